/**
 * `kubectl apply -f dist` exactly as the README says, on an empty cluster; then again (nothing
 * changes); a second synth with changed settings over the first; and the first back over that.
 * Each describe has a namespace of its own and sets it up itself.
 */
import { Cluster, KubectlResult, startCluster } from './harness';
import {
  applyVerbs, createNamespace, distOf, expectedPods, find, getJson, lines, namespaceOf, readObjects, resourceName, resourceVersions,
  tryGetJson, waitForPods, waitUntil, warnings,
} from './util';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

/**
 * A re-apply of the same files must change nothing: every object "unchanged" and its resourceVersion
 * the same. One exception is kubectl's, not the manifests': a PodDisruptionBudget's `spec.selector`
 * has patchStrategy "replace", so client-side apply always sends it and prints "configured" although
 * nothing changes; for it only the unchanged resourceVersion is required.
 */
function expectIdempotentApply(dir: string): void {
  const before = resourceVersions(cluster, dir);
  const r = cluster.kubectlOk(['apply', '-f', dir]);
  expect(r.stderr).toBe('');
  const after = resourceVersions(cluster, dir);
  expect({
    notUnchanged: [...applyVerbs(r.stdout)]
      .filter(([res, verb]) => verb !== 'unchanged' && !res.startsWith('poddisruptionbudget.policy/'))
      .map(([res, verb]) => `${res} ${verb}`),
    rewritten: Object.keys(before).filter((res) => after[res] !== before[res]),
  }).toEqual({ notUnchanged: [], rewritten: [] });
}

function expectEmptyDiff(dir: string): void {
  const d = cluster.kubectl(['diff', '-f', dir]);
  expect({ code: d.code, stdout: d.stdout, stderr: d.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
}

describe('kubectl apply -f dist (the default app)', () => {
  let dist: string;
  let ns: string;
  let first: KubectlResult;

  // The first apply, on an empty cluster: what the tests below read.
  beforeAll(() => {
    dist = distOf('a-default');
    ns = namespaceOf(dist);
    first = cluster.kubectlOk(['apply', '-f', dist]);
  });

  test('created every object on an empty cluster, with no warning', () => {
    const objects = readObjects(dist);
    expect(warnings(first)).toEqual([]);
    expect(first.stderr).toBe('');
    const verbs = applyVerbs(first.stdout);
    expect([...verbs.keys()].sort()).toEqual(objects.map(resourceName).sort());
    for (const [res, verb] of verbs) expect(`${res} ${verb}`).toBe(`${res} created`);
    const live = getJson(cluster, ['-f', dist]);
    expect(live.items).toHaveLength(objects.length);
    for (const item of live.items) expect(item.metadata.uid).toBeTruthy();
  });

  test('the documented names, and the tracking Service on nodePort 30003', () => {
    const names = lines(cluster.kubectlOk(['get', '-f', dist, '-o', 'name']).stdout);
    expect(names).toEqual(expect.arrayContaining([
      'secret/mlflow-credentials', 'service/mlflow-postgres', 'statefulset.apps/mlflow-postgres',
      'service/mlflow-minio', 'statefulset.apps/mlflow-minio', 'deployment.apps/mlflow', 'service/mlflow']));
    expect(names.filter((n) => /^job\.batch\/mlflow-bucket-[0-9a-f]+$/.test(n))).toHaveLength(1);
    const svc = getJson(cluster, ['service', 'mlflow', '-n', ns]);
    expect(svc.spec.type).toBe('NodePort');
    expect(svc.spec.ports.map((p: any) => p.nodePort)).toEqual([30003]);
  });

  test('the controllers create the Pods of every workload (Pending: there is no scheduler)', async () => {
    const want = expectedPods(readObjects(dist));
    expect(Object.keys(want).length).toBeGreaterThanOrEqual(4);
    await waitForPods(cluster, ns, want);
  });

  test('a second apply changes nothing', () => {
    expectIdempotentApply(dist);
  });

  test('kubectl diff -f dist is empty', () => {
    expectEmptyDiff(dist);
  });
});

/** The default app and changed-settings (same names), both moved to namespace `ns` on one node port. */
function firstAndChanged(ns: string, nodePort: number) {
  const overrides = { namespace: ns, server: { nodePort } };
  return { first: distOf('a-default', overrides), changed: distOf('changed-settings', overrides) };
}

describe('a second synth with changed settings applies over the first', () => {
  const ns = 'changed';
  let first: string;
  let changed: string;
  let firstJob: string;
  let rsBefore: number;
  let result: KubectlResult;

  // The first synth applied and its Pods created, then the changed one applied over it.
  beforeAll(async () => {
    ({ first, changed } = firstAndChanged(ns, 30011));
    await createNamespace(cluster, ns);
    cluster.kubectlOk(['apply', '-f', first]);
    await waitForPods(cluster, ns, expectedPods(readObjects(first)));
    firstJob = find(readObjects(first), 'Job').metadata.name;
    rsBefore = getJson(cluster, ['replicasets', '-n', ns]).items.length;
    result = cluster.kubectlOk(['apply', '-f', changed]);
  });

  test('the synth really differs (images, replicas, env, bucket Job name)', () => {
    const a = readObjects(first);
    const b = readObjects(changed);
    expect(namespaceOf(changed)).toBe(namespaceOf(first));
    const img = (objs: typeof a, kind: string, name?: string) => find(objs, kind, name).spec.template.spec.containers[0].image;
    expect(img(b, 'Deployment')).not.toBe(img(a, 'Deployment'));
    expect(img(b, 'StatefulSet', 'mlflow-postgres')).not.toBe(img(a, 'StatefulSet', 'mlflow-postgres'));
    expect(img(b, 'StatefulSet', 'mlflow-minio')).not.toBe(img(a, 'StatefulSet', 'mlflow-minio'));
    expect(img(b, 'Job')).not.toBe(img(a, 'Job'));
    expect(find(b, 'Deployment').spec.replicas).toBe(3);
    expect(find(b, 'Job').metadata.name).not.toBe(firstJob);
  });

  test('kubectl apply succeeded with no warning; the bucket Job is a new one', () => {
    expect(result.stderr).toBe('');
    const verbs = applyVerbs(result.stdout);
    expect(verbs.get('deployment.apps/mlflow')).toBe('configured');
    expect(verbs.get('statefulset.apps/mlflow-postgres')).toBe('configured');
    expect(verbs.get('statefulset.apps/mlflow-minio')).toBe('configured');
    expect(verbs.get('secret/mlflow-credentials')).toBe('configured');
    expect(verbs.get(`job.batch/${find(readObjects(changed), 'Job').metadata.name}`)).toBe('created');
  });

  test('the live objects carry the new settings, and the controllers act on them', async () => {
    const want = readObjects(changed);
    const deploy = getJson(cluster, ['deployment', 'mlflow', '-n', ns]);
    expect(deploy.spec.replicas).toBe(3);
    expect(deploy.spec.template.spec.containers[0].image).toBe(find(want, 'Deployment').spec.template.spec.containers[0].image);
    const env = Object.fromEntries(deploy.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.MLFLOW_SERVER_ALLOWED_HOSTS).toContain('mlflow.example.com');
    for (const name of ['mlflow-postgres', 'mlflow-minio']) {
      expect(getJson(cluster, ['statefulset', name, '-n', ns]).spec.template.spec.containers[0].image)
        .toBe(find(want, 'StatefulSet', name).spec.template.spec.containers[0].image);
    }
    await waitUntil('a new ReplicaSet', () => getJson(cluster, ['replicasets', '-n', ns]).items.length > rsBefore);
    const job = find(want, 'Job').metadata.name;
    await waitUntil(`a Pod of Job ${job}`, () => getJson(cluster, ['pods', '-n', ns, '-l', `job-name=${job}`]).items.length === 1);
    // Without --prune the earlier bucket Job stays (a finished Job is harmless).
    expect(tryGetJson(cluster, ['job', firstJob, '-n', ns])).toBeDefined();
  });

  test('applying it again changes nothing, and diff is empty', () => {
    expectIdempotentApply(changed);
    expectEmptyDiff(changed);
  });
});

describe('the first synth applies back over the changed one (a rollback)', () => {
  const ns = 'rollback';
  let first: string;

  beforeAll(async () => {
    let changed: string;
    ({ first, changed } = firstAndChanged(ns, 30012));
    await createNamespace(cluster, ns);
    cluster.kubectlOk(['apply', '-f', first]);
    cluster.kubectlOk(['apply', '-f', changed]);
  });

  test('kubectl apply succeeds with no warning, and the first synth\'s settings are live again', () => {
    const r = cluster.kubectlOk(['apply', '-f', first]);
    expect(r.stderr).toBe('');
    expect(getJson(cluster, ['deployment', 'mlflow', '-n', ns]).spec.replicas).toBe(find(readObjects(first), 'Deployment').spec.replicas);
  });
});
