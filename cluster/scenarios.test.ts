/**
 * The e2e suite's scenarios (e2e/scenarios/*: the app's settings, a .env, maybe a Secret the team
 * creates), synthesized from configuration only, each in a namespace of its own that enforces the
 * restricted Pod Security profile: a server dry run, then a real apply whose Pods are all admitted.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Cluster, startCluster } from './harness';
import {
  actualPods, applyVerbs, createNamespace, expectedPods, failedCreateEvents, installCrds, readObjects, resourceName,
  SCENARIO_ROOT, scenarioNames, synthScenario, waitForPods, warnings, writeObjects,
} from './util';

const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' };
const names = scenarioNames();
let cluster: Cluster;
const dirs: Record<string, string> = {};
const namespace = (name: string) => `scenario-${name}`.slice(0, 63).replace(/-+$/, '');

beforeAll(async () => {
  names.forEach((name, i) => { dirs[name] = synthScenario(name, { namespace: namespace(name), nodePort: 30300 + i }); });
  cluster = await startCluster();
  installCrds(cluster);
  for (const name of names) await createNamespace(cluster, namespace(name), RESTRICTED);
}, 240_000);
afterAll(async () => { await cluster?.stop(); });

test('there are scenarios', () => {
  expect(names.length).toBeGreaterThanOrEqual(5);
});

describe.each(names)('scenario %s', (name) => {
  test('the Secret a team creates (if any) is accepted, then a server dry run of dist/ with no warning', () => {
    const secret = path.join(SCENARIO_ROOT, name, 'secret.yaml');
    if (fs.existsSync(secret)) {
      const objects = readObjects(path.dirname(secret)).filter((o) => o.kind === 'Secret').map((o) => ({ ...o, metadata: { ...o.metadata, namespace: namespace(name) } }));
      cluster.kubectlOk(['apply', '-f', writeObjects(objects)]);
    }
    const r = cluster.kubectl(['apply', '--dry-run=server', '-f', dirs[name]]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect([...applyVerbs(r.stdout).keys()].sort()).toEqual(readObjects(dirs[name]).map(resourceName).sort());
  });

  test('applied for real: no PodSecurity warning, every workload gets its Pods, none refused', async () => {
    const r = cluster.kubectlOk(['apply', '-f', dirs[name]]);
    expect(warnings(r)).toEqual([]);
    const want = expectedPods(readObjects(dirs[name]));
    try {
      await waitForPods(cluster, namespace(name), want);
    } finally {
      expect(failedCreateEvents(cluster, namespace(name))).toEqual([]);
    }
    expect(actualPods(cluster, namespace(name))).toEqual(want);
  });
});
