/**
 * Server-side dry runs of every configuration, and proof that the server does reject bad manifests
 * (so a green run of this suite means something).
 */
import { Cluster, startCluster } from './harness';
import {
  applyVerbs, createNamespace, find, installCrds, lines, namespaceOf, readObjects, resourceName,
  synthConfigs, synthDefault, tryGetJson, warnings, writeObjects,
} from './util';

let cluster: Cluster;
let dirs: Record<string, string>;

const CONFIG_NAMES = ['changed', 'external-db', 'external-s3', 'all-external', 'existing-secret', 'other-namespace', 'own-namespace', 'everything', 'mysql-seaweedfs-mlflow3', 'sso-route'];

beforeAll(async () => {
  dirs = { default: synthDefault(), ...synthConfigs(...CONFIG_NAMES) };
  cluster = await startCluster();
  installCrds(cluster);
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

describe('kubectl apply --dry-run=server', () => {
  // A server dry run creates nothing, so namespaced objects need their namespace to exist already,
  // even when the manifests hold the Namespace (kubectl's limit, whatever the manifests say).
  test.each(['default', ...CONFIG_NAMES])('accepts the %s configuration, with no warning', async (name) => {
    const dir = dirs[name];
    const ns = namespaceOf(dir);
    if (!tryGetJson(cluster, ['namespace', ns])) await createNamespace(cluster, ns);
    const objects = readObjects(dir);
    const r = cluster.kubectl(['apply', '--dry-run=server', '-f', dir]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(warnings(r)).toEqual([]);
    const verbs = applyVerbs(r.stdout);
    expect([...verbs.keys()].sort()).toEqual(objects.map(resourceName).sort());
  });

  test('created nothing', () => {
    const r = cluster.kubectlOk(['get', 'deployments,statefulsets,jobs,cronjobs,services,secrets,networkpolicies', '-A', '-o', 'name',
      '-l', 'app.kubernetes.io/part-of=mlflow']);
    expect(lines(r.stdout)).toEqual([]);
  });
});

describe('the server rejects broken manifests (the suite can fail)', () => {
  beforeAll(() => {
    cluster.kubectlOk(['apply', '-f', dirs.default]);
  });

  test('a second Service on the same nodePort (real apply and dry run)', async () => {
    const original = find(readObjects(dirs.default), 'Service', 'mlflow');
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
    const dir = dirs['other-namespace'];
    const svc = JSON.parse(JSON.stringify(find(readObjects(dir), 'Service', 'tracking')));
    svc.spec.ports[0].nodePort = 40003;
    const r = cluster.kubectl(['apply', '-f', writeObjects([svc])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/provided port is not in the valid range/);
  });

  test('an invalid field value (imagePullPolicy: Sometimes)', () => {
    const deploy = JSON.parse(JSON.stringify(find(readObjects(dirs.default), 'Deployment', 'mlflow')));
    deploy.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
    const r = cluster.kubectl(['apply', '-f', writeObjects([deploy])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unsupported value: "Sometimes"/);
  });

  test('an unknown field (strict field validation)', () => {
    const sts = JSON.parse(JSON.stringify(find(readObjects(dirs.default), 'StatefulSet', 'mlflow-postgres')));
    sts.spec.replicaz = 2;
    const r = cluster.kubectl(['apply', '-f', writeObjects([sts])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown field "spec.replicaz"/);
  });

  test('a changed pod template under the same Job name (Jobs are immutable)', () => {
    const job = JSON.parse(JSON.stringify(find(readObjects(dirs.default), 'Job')));
    job.spec.template.spec.containers[0].image = 'quay.io/minio/mc:RELEASE.2099-01-01T00-00-00Z';
    const r = cluster.kubectl(['apply', '-f', writeObjects([job])]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/field is immutable/);
  });
});
