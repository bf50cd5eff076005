/**
 * A server dry run creates nothing, and the server does reject bad manifests (so a green run of this
 * suite means something). Every scenario's own dry run is in scenarios.test.ts.
 */
import { Cluster, startCluster } from './harness';
import { applyVerbs, createNamespace, distOf, find, readObjects, resourceName, tryGetJson, writeObjects } from './util';

let cluster: Cluster;
let dist: string;

beforeAll(async () => {
  dist = distOf('a-default');
  cluster = await startCluster();
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

test('kubectl apply --dry-run=server accepts the default app and creates nothing', async () => {
  const dir = distOf('a-default', { namespace: 'dry-run-only', server: { nodePort: 30010 } });
  // A server dry run creates nothing, so namespaced objects need their namespace to exist already.
  await createNamespace(cluster, 'dry-run-only');
  const r = cluster.kubectl(['apply', '--dry-run=server', '-f', dir]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  const objects = readObjects(dir);
  expect([...applyVerbs(r.stdout).keys()].sort()).toEqual(objects.map(resourceName).sort());
  const created = objects.filter((o) => tryGetJson(cluster, [resourceName(o), '-n', 'dry-run-only']) !== undefined).map(resourceName);
  expect(created).toEqual([]);
});

describe('the server rejects broken manifests (the suite can fail)', () => {
  // The default app, applied: what the broken manifests below collide with.
  beforeAll(() => {
    cluster.kubectlOk(['apply', '-f', dist]);
  });

  test('a second Service on the same nodePort (real apply and dry run)', async () => {
    const original = find(readObjects(dist), 'Service', 'mlflow');
    const svc = JSON.parse(JSON.stringify(original));
    svc.metadata.namespace = 'squatter';
    await createNamespace(cluster, 'squatter');
    for (const extra of [[], ['--dry-run=server']]) {
      const r = cluster.kubectl(['apply', ...extra, '-f', writeObjects([svc])]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`Invalid value: ${original.spec.ports[0].nodePort}: provided port is already allocated`);
    }
  });

  test('a nodePort outside 30000-32767 (a server dry run does not catch it; a real apply does)', () => {
    const svc = JSON.parse(JSON.stringify(find(readObjects(dist), 'Service', 'mlflow')));
    svc.metadata.name = 'out-of-range';
    svc.spec.ports[0].nodePort = 40003;
    const r = cluster.kubectl(['apply', '-f', writeObjects([svc])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/provided port is not in the valid range/);
  });

  test('an invalid field value (imagePullPolicy: Sometimes)', () => {
    const deploy = JSON.parse(JSON.stringify(find(readObjects(dist), 'Deployment', 'mlflow')));
    deploy.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
    const r = cluster.kubectl(['apply', '-f', writeObjects([deploy])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unsupported value: "Sometimes"/);
  });

  test('an unknown field (strict field validation)', () => {
    const sts = JSON.parse(JSON.stringify(find(readObjects(dist), 'StatefulSet', 'mlflow-postgres')));
    sts.spec.replicaz = 2;
    const r = cluster.kubectl(['apply', '-f', writeObjects([sts])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown field "spec.replicaz"/);
  });

  test('a changed pod template under the same Job name (Jobs are immutable)', () => {
    const job = JSON.parse(JSON.stringify(find(readObjects(dist), 'Job')));
    job.spec.template.spec.containers[0].image = 'quay.io/minio/mc:RELEASE.2099-01-01T00-00-00Z';
    const r = cluster.kubectl(['apply', '-f', writeObjects([job])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/field is immutable/);
  });
});
