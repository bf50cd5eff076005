/** `kubectl apply --server-side`: on a fresh cluster, and over an earlier client-side apply. */
import { Cluster, KubectlResult, startCluster } from './harness';
import { applyVerbs, distOf, expectedPods, find, getJson, namespaceOf, readObjects, resourceName, waitForPods } from './util';

let cluster: Cluster;

beforeAll(async () => {
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

describe('kubectl apply --server-side of the default app', () => {
  let dist: string;
  let first: KubectlResult;

  // The first server-side apply, on a fresh cluster: what the first test reads.
  beforeAll(() => {
    dist = distOf('a-default');
    first = cluster.kubectlOk(['apply', '--server-side', '-f', dist]);
  });

  test('on a fresh cluster: every object applied, no warning, no conflict', () => {
    expect(first.stderr).toBe('');
    expectEveryObject(first.stdout, dist, 'serverside-applied');
    expect(getJson(cluster, ['service', 'mlflow', '-n', namespaceOf(dist)]).spec.ports[0].nodePort).toBe(30003);
  });

  test('again, after the controllers wrote status: no conflict, and diff --server-side is empty', async () => {
    await waitForPods(cluster, namespaceOf(dist), expectedPods(readObjects(dist)));
    const r = cluster.kubectlOk(['apply', '--server-side', '-f', dist]);
    expect(r.stderr).toBe('');
    expectEveryObject(r.stdout, dist, 'serverside-applied');
    expectEmptyServerSideDiff(dist);
  });
});

test('kubectl apply --server-side over a client-side apply (another name, namespace and node port)', () => {
  const other = distOf('other-namespace-name-and-node-port');
  const csa = cluster.kubectlOk(['apply', '-f', other]);
  expectEveryObject(csa.stdout, other, 'created');
  const ssa = cluster.kubectl(['apply', '--server-side', '-f', other]);
  expect({ code: ssa.code, stderr: ssa.stderr }).toEqual({ code: 0, stderr: '' });
  expectEveryObject(ssa.stdout, other, 'serverside-applied');
  expectEmptyServerSideDiff(other);
  const service = find(readObjects(other), 'Service', 'tracking');
  expect(getJson(cluster, ['service', 'tracking', '-n', namespaceOf(other)]).spec.ports[0].nodePort).toBe(service.spec.ports[0].nodePort);
});
