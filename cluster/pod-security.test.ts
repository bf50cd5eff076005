/**
 * Pod Security admission, profile "restricted" (enforce + warn + audit on the namespace): the apply
 * prints no warning and the controllers' Pods of every workload are admitted, CronJobs' included.
 */
import { Cluster, startCluster } from './harness';
import {
  actualPods, createNamespace, expectedPods, failedCreateEvents, find, getJson, installCrds, namespaceOf,
  readObjects, synthConfigs, synthDefault, waitForPods, waitUntil, warnings, writeObjects,
} from './util';

let cluster: Cluster;
let dirs: Record<string, string>;

const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/audit': 'restricted',
};

beforeAll(async () => {
  dirs = { default: synthDefault(), ...synthConfigs('everything', 'mysql-seaweedfs-mlflow3', 'sso-route') };
  cluster = await startCluster();
  installCrds(cluster);
  // Each namespace exists and is labelled before the first apply; apply keeps labels it did not set.
  for (const dir of Object.values(dirs)) {
    const ns = namespaceOf(dir);
    if (ns === 'default') {
      cluster.kubectlOk(['label', 'namespace', 'default', ...Object.entries(RESTRICTED).map(([k, v]) => `${k}=${v}`)]);
    } else {
      await createNamespace(cluster, ns, RESTRICTED);
    }
  }
}, 180_000);
afterAll(async () => { await cluster?.stop(); });

describe.each(['default', 'everything', 'mysql-seaweedfs-mlflow3', 'sso-route'])('the %s configuration in a namespace with enforce=restricted', (name) => {
  let dir: string;
  let ns: string;
  beforeAll(() => { dir = dirs[name]; ns = namespaceOf(dir); });

  test('kubectl apply prints no PodSecurity warning', () => {
    const r = cluster.kubectlOk(['apply', '-f', dir]);
    expect(warnings(r)).toEqual([]);
    expect(r.stderr).toBe('');
    expect(getJson(cluster, ['namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
  });

  test('every workload gets its Pods (Pending), none refused', async () => {
    const want = expectedPods(readObjects(dir));
    try {
      await waitForPods(cluster, ns, want);
    } finally {
      // Whatever happened, the reason is in the controllers' events.
      expect(failedCreateEvents(cluster, ns)).toEqual([]);
    }
    expect(actualPods(cluster, ns)).toEqual(want);
    for (const pod of getJson(cluster, ['pods', '-n', ns]).items) expect(pod.status.phase).toBe('Pending');
    for (const rs of getJson(cluster, ['replicasets', '-n', ns]).items) {
      expect((rs.status.conditions ?? []).filter((c: any) => c.type === 'ReplicaFailure')).toEqual([]);
    }
  });

  test('a Job started from each CronJob gets its Pod', async () => {
    const cronJobs = readObjects(dir).filter((o) => o.kind === 'CronJob').map((o) => o.metadata.name);
    for (const cj of cronJobs) {
      const job = `${cj}-now`.slice(0, 52);
      cluster.kubectlOk(['create', 'job', job, `--from=cronjob/${cj}`, '-n', ns]);
      await waitUntil(`a Pod of Job ${job}`, () => getJson(cluster, ['pods', '-n', ns, '-l', `job-name=${job}`]).items.length === 1);
    }
    expect(failedCreateEvents(cluster, ns)).toEqual([]);
  });
});

test('(control) a Pod template outside the profile is warned about and its Pods refused', async () => {
  const deploy = JSON.parse(JSON.stringify(find(readObjects(dirs.default), 'Deployment')));
  deploy.metadata.name = 'not-restricted';
  deploy.spec.replicas = 1;
  deploy.spec.selector.matchLabels = { control: 'not-restricted' };
  deploy.spec.template.metadata.labels = { control: 'not-restricted' };
  deploy.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
  const r = cluster.kubectlOk(['apply', '-f', writeObjects([deploy])]);
  expect(r.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  await waitUntil('a FailedCreate event', () => failedCreateEvents(cluster, namespaceOf(dirs.default)).some((e) => /violates PodSecurity/.test(e)));
  cluster.kubectlOk(['delete', 'deployment', 'not-restricted', '-n', namespaceOf(dirs.default)]);
});
