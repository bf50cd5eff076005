/**
 * Data safety: `kubectl delete -f dist` must leave the PostgreSQL and MinIO PersistentVolumeClaims,
 * and a re-apply must bind the very same claims (same UID) to the new StatefulSet Pods.
 */
import { Cluster, startCluster } from './harness';
import { createNamespace, distOf, getJson, namespaceOf, readObjects, tryGetJson, waitUntil } from './util';

// Each test applies and deletes its own scenario, each in a namespace of its own.
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

type Claims = Record<string, { claim: string; uid: string }>;

/** Waits for each StatefulSet's first Pod and returns its data claim's name and UID. */
async function claims(dir: string): Promise<Claims> {
  const ns = namespaceOf(dir);
  const result: Claims = {};
  for (const sts of readObjects(dir).filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name)) {
    const pod = await waitUntil(`pod ${sts}-0 in ${ns}`, () => tryGetJson(cluster, ['pod', `${sts}-0`, '-n', ns]));
    const volumes = (pod.spec.volumes as any[]).filter((v) => v.persistentVolumeClaim);
    expect(volumes).toHaveLength(1);
    const claim = volumes[0].persistentVolumeClaim.claimName;
    const pvc = await waitUntil(`pvc ${claim}`, () => tryGetJson(cluster, ['pvc', claim, '-n', ns]));
    result[sts] = { claim, uid: pvc.metadata.uid };
  }
  return result;
}

/** apply, delete -f, and what is left of the claims afterwards. */
async function applyThenDelete(dir: string): Promise<{ first: Claims; left: Record<string, string | undefined> }> {
  const ns = namespaceOf(dir);
  cluster.kubectlOk(['apply', '-f', dir]);
  const first = await claims(dir);
  expect(Object.keys(first).length).toBeGreaterThan(0);
  const del = cluster.kubectl(['delete', '-f', dir, '--wait=true', '--timeout=120s']);
  expect({ code: del.code, stderr: del.stderr }).toEqual({ code: 0, stderr: '' });
  // Let the garbage collector (and, if the namespace went, the namespace controller) finish.
  await waitUntil('the Pods to be gone', () => {
    const pods = tryGetJson(cluster, ['pods', '-n', ns]);
    return !pods || pods.items.length === 0;
  });
  const left: Record<string, string | undefined> = {};
  for (const { claim } of Object.values(first)) {
    const pvc = tryGetJson(cluster, ['pvc', claim, '-n', ns]);
    left[claim] = pvc && !pvc.metadata.deletionTimestamp ? pvc.metadata.uid : undefined;
  }
  return { first, left };
}

async function expectDeleteKeepsClaims(dir: string): Promise<void> {
  const { first, left } = await applyThenDelete(dir);
  expect(left).toEqual(Object.fromEntries(Object.values(first).map(({ claim, uid }) => [claim, uid])));
  cluster.kubectlOk(['apply', '-f', dir]);
  expect(await claims(dir)).toEqual(first);
}

describe('kubectl delete -f dist keeps the data', () => {
  test('the default app: the PVCs survive and are bound again by the re-applied StatefulSets', async () => {
    await expectDeleteKeepsClaims(distOf('a-default'));
  });

  test('a namespace made beforehand (createNamespace false, as the README says for a second installation): the same, and the namespace stays', async () => {
    const dir = distOf('e-shared-bucket-team-a');
    const ns = namespaceOf(dir);
    await createNamespace(cluster, ns);
    await expectDeleteKeepsClaims(dir);
    expect(getJson(cluster, ['namespace', ns]).status.phase).toBe('Active');
  });

  test('createNamespace: true: as documented, deleting the output deletes the namespace and its claims', async () => {
    const dir = distOf('other-namespace-name-and-node-port');
    expect(readObjects(dir).some((o) => o.kind === 'Namespace')).toBe(true);
    const { left } = await applyThenDelete(dir);
    expect(Object.values(left).filter((uid) => uid !== undefined)).toEqual([]);
    expect(tryGetJson(cluster, ['namespace', namespaceOf(dir)])).toBeUndefined();
  });
});
