/** `kubectl apply --server-side`: on a fresh cluster, and over an earlier client-side apply. */
import { Cluster, startCluster } from './harness';
import { applyVerbs, expectedPods, getJson, namespaceOf, readObjects, resourceName, synthConfigs, synthDefault, waitForPods } from './util';

let cluster: Cluster;
let dist: string;
let other: string;

beforeAll(async () => {
  dist = synthDefault();
  other = synthConfigs('other-namespace')['other-namespace'];
  cluster = await startCluster();
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

function expectEveryObject(stdout: string, dir: string, verb: string): void {
  const verbs = applyVerbs(stdout);
  expect([...verbs.keys()].sort()).toEqual(readObjects(dir).map(resourceName).sort());
  for (const [res, v] of verbs) expect(`${res} ${v}`).toBe(`${res} ${verb}`);
}

function expectEmptyServerSideDiff(dir: string): void {
  const d = cluster.kubectl(['diff', '--server-side', '-f', dir]);
  expect({ code: d.code, stdout: d.stdout, stderr: d.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
}

describe('kubectl apply --server-side', () => {
  test('on a fresh cluster: every object applied, no warning, no conflict', () => {
    const r = cluster.kubectlOk(['apply', '--server-side', '-f', dist]);
    expect(r.stderr).toBe('');
    expectEveryObject(r.stdout, dist, 'serverside-applied');
    expect(getJson(cluster, ['service', 'mlflow', '-n', namespaceOf(dist)]).spec.ports[0].nodePort).toBe(30003);
  });

  test('again, after the controllers wrote status: no conflict, and diff --server-side is empty', async () => {
    await waitForPods(cluster, namespaceOf(dist), expectedPods(readObjects(dist)));
    const r = cluster.kubectlOk(['apply', '--server-side', '-f', dist]);
    expect(r.stderr).toBe('');
    expectEveryObject(r.stdout, dist, 'serverside-applied');
    expectEmptyServerSideDiff(dist);
  });

  test('over a client-side apply (another namespace and node port)', () => {
    const csa = cluster.kubectlOk(['apply', '-f', other]);
    expectEveryObject(csa.stdout, other, 'created');
    const ssa = cluster.kubectl(['apply', '--server-side', '-f', other]);
    expect({ code: ssa.code, stderr: ssa.stderr }).toEqual({ code: 0, stderr: '' });
    expectEveryObject(ssa.stdout, other, 'serverside-applied');
    expectEmptyServerSideDiff(other);
    expect(getJson(cluster, ['service', 'tracking', '-n', namespaceOf(other)]).spec.ports[0].nodePort).toBe(31234);
  });
});
