/**
 * Every scenario of the matrix (e2e/scenarios/<name>/: the app's settings, a .env or the Secret a team
 * creates), synthesized through the app's path, each in a namespace of its own that enforces, warns and
 * audits the restricted Pod Security profile, with a node port of its own: a server dry run, a real
 * apply whose Pods are all admitted, and a Job from each CronJob admitted too.
 */
import { scenarioNames, secretsOf } from '../e2e/matrix';
import { Cluster, startCluster } from './harness';
import {
  actualPods, applyVerbs, createNamespace, distOf, expectedPods, failedCreateEvents, find, getJson, installCrds, isolated,
  readObjects, resourceName, waitForPods, waitUntil, warnings, writeObjects,
} from './util';

const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/audit': 'restricted',
};
const names = scenarioNames();
let cluster: Cluster;
const dirs: Record<string, string> = {};
const namespace = (name: string) => `scenario-${name}`.slice(0, 63).replace(/-+$/, '');

// What a team has before it applies dist/: the namespace (labelled), and the Secret it creates, if any.
beforeAll(async () => {
  names.forEach((name, i) => { dirs[name] = distOf(name, isolated(name, namespace(name), 30300 + i)); });
  cluster = await startCluster();
  installCrds(cluster);
  for (const name of names) {
    await createNamespace(cluster, namespace(name), RESTRICTED);
    const secrets = secretsOf(name, namespace(name));
    if (secrets.length > 0) cluster.kubectlOk(['apply', '-f', writeObjects(secrets)]);
  }
}, 300_000);
afterAll(async () => { await cluster?.stop(); });

test('there are scenarios', () => {
  expect(names.length).toBeGreaterThanOrEqual(20);
});

describe.each(names)('scenario %s', (name) => {
  test('a server dry run of dist/ is accepted with no warning and names every object', () => {
    const r = cluster.kubectl(['apply', '--dry-run=server', '-f', dirs[name]]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect([...applyVerbs(r.stdout).keys()].sort()).toEqual(readObjects(dirs[name]).map(resourceName).sort());
  });

  test('applied for real: no warning, every workload gets its Pods (Pending: no scheduler), none refused', async () => {
    const ns = namespace(name);
    const r = cluster.kubectlOk(['apply', '-f', dirs[name]]);
    expect(warnings(r)).toEqual([]);
    expect(r.stderr).toBe('');
    expect(getJson(cluster, ['namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
    const want = expectedPods(readObjects(dirs[name]));
    try {
      await waitForPods(cluster, ns, want);
    } finally {
      // Whatever happened, the reason is in the controllers' events.
      expect(failedCreateEvents(cluster, ns)).toEqual([]);
    }
    expect(actualPods(cluster, ns)).toEqual(expect.objectContaining(want));
    for (const pod of getJson(cluster, ['pods', '-n', ns]).items) expect(pod.status.phase).toBe('Pending');
    for (const rs of getJson(cluster, ['replicasets', '-n', ns]).items) {
      expect((rs.status.conditions ?? []).filter((c: any) => c.type === 'ReplicaFailure')).toEqual([]);
    }
  });

  test('a Job started from each CronJob gets its Pod', async () => {
    const ns = namespace(name);
    cluster.kubectlOk(['apply', '-f', dirs[name]]);
    for (const cj of readObjects(dirs[name]).filter((o) => o.kind === 'CronJob').map((o) => o.metadata.name)) {
      const job = `${cj}-now`.slice(0, 52);
      cluster.kubectlOk(['create', 'job', job, `--from=cronjob/${cj}`, '-n', ns]);
      await waitUntil(`a Pod of Job ${job}`, () => getJson(cluster, ['pods', '-n', ns, '-l', `job-name=${job}`]).items.length === 1);
    }
    expect(failedCreateEvents(cluster, ns)).toEqual([]);
  });
});

test('(control) a Pod template outside the profile is warned about and its Pods refused', async () => {
  const ns = 'control-restricted';
  await createNamespace(cluster, ns, RESTRICTED);
  const deploy = JSON.parse(JSON.stringify(find(readObjects(dirs['a-default']), 'Deployment')));
  deploy.metadata = { name: 'not-restricted', namespace: ns };
  deploy.spec.replicas = 1;
  deploy.spec.selector.matchLabels = { control: 'not-restricted' };
  deploy.spec.template.metadata.labels = { control: 'not-restricted' };
  deploy.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
  const r = cluster.kubectlOk(['apply', '-f', writeObjects([deploy])]);
  expect(r.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  await waitUntil('a FailedCreate event', () => failedCreateEvents(cluster, ns).some((e) => /violates PodSecurity/.test(e)));
});
