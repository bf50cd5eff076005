import { Duration, Size } from 'cdk8s';
import { ArtifactStore, BackendStore, ConfigError, Credentials, Permission } from '../lib';
import { containersOf, envOf, Manifest, one, podSpecs, secretContent, synthStack, TEST_VALUES } from './support/synth';

const ADMIN = { adminUsername: 'root', adminPassword: 'admin-pass%word#12' };
const withAuth = (extra = {}) => synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, ...ADMIN }), ...extra });
const server = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec.containers.find((c: any) => c.name === 'mlflow');
const migrate = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec.initContainers.find((c: any) => c.name === 'migrate');

function expectConfigError(fn: () => unknown, pattern: RegExp): void {
  expect(fn).toThrow(ConfigError);
  expect(fn).toThrow(pattern);
}

describe('basic auth', () => {
  const objects = withAuth();
  const secret = secretContent(one(objects, 'Secret'));

  test('is off without an admin password, on with one', () => {
    expect(server(synthStack()).args).not.toContain('basic-auth');
    expect(server(objects).args).toEqual(expect.arrayContaining(['--app-name', 'basic-auth']));
  });

  test('keeps the admin user, password and a shared Flask key in the Secret', () => {
    expect(secret).toMatchObject({ MLFLOW_TRACKING_USERNAME: 'root', MLFLOW_TRACKING_PASSWORD: ADMIN.adminPassword });
    expect(secret.MLFLOW_FLASK_SERVER_SECRET_KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(secretContent(one(withAuth(), 'Secret')).MLFLOW_FLASK_SERVER_SECRET_KEY).toBe(secret.MLFLOW_FLASK_SERVER_SECRET_KEY);
    expect(envOf(server(objects), 'MLFLOW_FLASK_SERVER_SECRET_KEY').valueFrom.secretKeyRef.key).toBe('MLFLOW_FLASK_SERVER_SECRET_KEY');
  });

  test('the auth config file comes from the Secret, stores users in the same database, and escapes % for configparser', () => {
    const ini = secret['basic_auth.ini'];
    expect(ini).toContain(`database_uri = ${secret.MLFLOW_BACKEND_STORE_URI.replace(/%/g, '%%')}`);
    expect(ini).toContain('admin_password = admin-pass%%word#12');
    expect(ini).toContain('default_permission = READ');
    expect(ini).toContain('auth_cache_ttl_seconds = 30');
    const pod = one(objects, 'Deployment').spec.template.spec;
    const volume = pod.volumes.find((v: any) => v.name === 'auth-config');
    expect(volume.secret).toMatchObject({ secretName: 'mlflow-credentials', items: [{ key: 'basic_auth.ini', path: 'basic_auth.ini' }] });
    expect(objects.some((o) => o.kind === 'ConfigMap')).toBe(false);
    for (const c of [server(objects), migrate(objects)]) {
      expect(envOf(c, 'MLFLOW_AUTH_CONFIG_PATH').value).toBe('/etc/mlflow-auth/basic_auth.ini');
      expect(c.volumeMounts).toContainEqual({ name: 'auth-config', mountPath: '/etc/mlflow-auth', readOnly: true });
    }
  });

  test('the auth schema is migrated in the serialized step, and probes stay on the open /health', () => {
    expect(migrate(objects).command[2]).toContain('auth_utils.migrate_if_needed(engine, "head")');
    // A changed admin password in the Secret is applied to the existing admin there too.
    expect(migrate(objects).command[2]).toContain('auth_store.update_user(admin, password=password, is_admin=True)');
    expect(envOf(migrate(objects), 'MLFLOW_TRACKING_PASSWORD').valueFrom.secretKeyRef.key).toBe('MLFLOW_TRACKING_PASSWORD');
    expect(server(objects).readinessProbe.httpGet.path).toBe('/health');
  });

  test('the credential cache is configurable and can be turned off', () => {
    expect(secretContent(one(withAuth({ auth: { credentialCacheTtl: Duration.seconds(0) } }), 'Secret'))['basic_auth.ini']).toContain('auth_cache_ttl_seconds = 0');
    expectConfigError(() => withAuth({ auth: { credentialCacheTtl: Duration.days(2) } }), /auth\.credentialCacheTtl must be whole seconds from 0s to 86400s/);
  });

  test('the default permission is configurable', () => {
    expect(secretContent(one(withAuth({ auth: { defaultPermission: Permission.NO_PERMISSIONS } }), 'Secret'))['basic_auth.ini']).toContain('default_permission = NO_PERMISSIONS');
  });

  test('auth on without an admin password, or with a short one, is refused', () => {
    expectConfigError(() => synthStack({ auth: { enabled: true } }), /auth\.enabled is true but Credentials\.fromValues has no MLFLOW_TRACKING_PASSWORD/);
    expectConfigError(() => Credentials.fromValues({ ...TEST_VALUES, adminPassword: 'short' }), /MLFLOW_TRACKING_PASSWORD is the MLflow admin password and must be at least 12 characters/);
    expectConfigError(() => Credentials.fromValues({ ...TEST_VALUES, adminUsername: 'root' }), /MLFLOW_TRACKING_USERNAME is set but MLFLOW_TRACKING_PASSWORD is not/);
  });

  test('can be turned off even with an admin password', () => {
    expect(server(withAuth({ auth: { enabled: false } })).args).not.toContain('basic-auth');
  });
});

describe('network isolation', () => {
  const objects = synthStack({ garbageCollection: {} });
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const policyFor = (component: string) => policies.find((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component'] === component)!;
  const fromComponents = (policy: Manifest) => policy.spec.ingress.flatMap((r: any) => (r.from ?? []).map((f: any) => f.podSelector.matchLabels['app.kubernetes.io/component'])).sort();

  test('every pod of the stack is isolated for ingress and egress by a policy', () => {
    for (const { owner, labels } of podSpecs(objects)) {
      const selecting = policies.filter((p) => Object.entries(p.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v));
      expect(`${owner.kind}/${owner.metadata.name}: ${selecting.length}`).toBe(`${owner.kind}/${owner.metadata.name}: 1`);
      expect(selecting[0].spec.policyTypes).toEqual(['Ingress', 'Egress']);
    }
  });

  test('PostgreSQL accepts only the tracking server, gc and backup on 5432', () => {
    const postgres = policyFor('backend-store');
    expect(fromComponents(postgres)).toEqual(['backup', 'garbage-collection', 'tracking-server']);
    expect(postgres.spec.ingress[0].ports).toEqual([{ port: 5432, protocol: 'TCP' }]);
  });

  test('MinIO accepts only the tracking server, the bucket Job, backup and gc (direct-mode deletes) on 9000', () => {
    const minio = policyFor('artifact-store');
    expect(fromComponents(minio)).toEqual(['backup', 'bucket-job', 'garbage-collection', 'tracking-server']);
    expect(minio.spec.ingress[0].ports).toEqual([{ port: 9000, protocol: 'TCP' }]);
  });

  test('the tracking server accepts its port from anywhere (NodePort, Ingress) and nothing else', () => {
    expect(policyFor('tracking-server').spec.ingress).toEqual([{ ports: [{ port: 5000, protocol: 'TCP' }] }]);
  });

  test('jobs accept nothing, and every pod may resolve DNS', () => {
    for (const component of ['bucket-job', 'garbage-collection', 'backup']) expect(policyFor(component).spec.ingress).toBeUndefined();
    for (const p of policies) expect(p.spec.egress).toContainEqual({ ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] });
  });

  test('external stores are reached by port, anywhere', () => {
    const external = synthStack({ backendStore: BackendStore.external({ host: 'db.example.com', port: 6432 }), artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com:8443' }) });
    const egress = external.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'mlflow-tracking-server')!.spec.egress;
    expect(egress).toContainEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }, { namespaceSelector: {} }], ports: [{ port: 6432, protocol: 'TCP' }] });
    expect(egress).toContainEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }, { namespaceSelector: {} }], ports: [{ port: 8443, protocol: 'TCP' }] });
  });

  test('can be turned off', () => {
    expect(synthStack({ networkPolicies: { enabled: false } }).some((o) => o.kind === 'NetworkPolicy')).toBe(false);
  });
});

describe('availability', () => {
  test('with more than one replica: a PodDisruptionBudget and a spread over nodes', () => {
    const objects = synthStack({ server: { replicas: 3 } });
    const pdb = one(objects, 'PodDisruptionBudget');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: one(objects, 'Deployment').spec.selector.matchLabels } });
    expect(one(objects, 'Deployment').spec.template.spec.topologySpreadConstraints).toEqual([
      expect.objectContaining({ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }),
    ]);
    expect(one(objects, 'Deployment').spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  test('with one replica: no budget (it would block every node drain)', () => {
    expect(synthStack({ server: { replicas: 1 } }).some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
  });

  test('autoscaling adds an HPA on CPU and leaves the replica count to it', () => {
    const objects = synthStack({ server: { autoscaling: { minReplicas: 2, maxReplicas: 8, cpuUtilizationPercent: 60 } } });
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 8, scaleTargetRef: { kind: 'Deployment', name: 'mlflow' } });
    expect(hpa.spec.metrics[0].resource.target.averageUtilization).toBe(60);
    expect(one(objects, 'Deployment').spec.replicas).toBeUndefined();
  });

  test('replicas together with autoscaling, or max below min, is refused', () => {
    expectConfigError(() => synthStack({ server: { replicas: 2, autoscaling: { maxReplicas: 4 } } }), /server\.replicas and server\.autoscaling conflict/);
    expectConfigError(() => synthStack({ server: { autoscaling: { minReplicas: 3, maxReplicas: 2 } } }), /server\.autoscaling\.maxReplicas must be an integer from 3 to 100/);
  });
});

describe('ingress', () => {
  const objects = synthStack({ ingress: { host: 'mlflow.example.com', tlsSecretName: 'mlflow-tls', maxBodySize: Size.gibibytes(2) } });
  const ingress = one(objects, 'Ingress');

  test('routes the host to the server Service, with TLS and a body-size hint', () => {
    expect(ingress.spec.rules[0]).toEqual({ host: 'mlflow.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'mlflow', port: { number: 5000 } } } }] } });
    expect(ingress.spec.tls).toEqual([{ hosts: ['mlflow.example.com'], secretName: 'mlflow-tls' }]);
    expect(ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size']).toBe('2048m');
  });

  test('adds the host to the allowed hosts and CORS origins', () => {
    expect(envOf(server(objects), 'MLFLOW_SERVER_ALLOWED_HOSTS').value.split(',')).toEqual(expect.arrayContaining(['mlflow.example.com', 'mlflow.example.com:*']));
    expect(envOf(server(objects), 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS').value.split(',')).toEqual(expect.arrayContaining(['https://mlflow.example.com', 'http://mlflow.example.com']));
  });

  test.each(['https://mlflow.example.com', 'mlflow', 'MLflow.example.com', '*.example.com', 'mlflow.example.com:443'])('host %p is refused', (host) => {
    expectConfigError(() => synthStack({ ingress: { host } }), /ingress\.host must be a fully qualified DNS name/);
  });
});

describe('metrics', () => {
  test('exposes Prometheus metrics from a writable volume; a listener beside MLflow serves them on a port a ServiceMonitor scrapes', () => {
    const objects = synthStack({ metrics: {} });
    const c = server(objects);
    const dir = c.args[c.args.indexOf('--expose-prometheus') + 1];
    expect(c.volumeMounts.map((m: any) => m.mountPath)).toContain(dir);
    const listener = one(objects, 'Deployment').spec.template.spec.containers.find((x: any) => x.name === 'metrics');
    expect(listener).toMatchObject({ image: c.image, ports: [{ name: 'metrics', containerPort: 9464 }], volumeMounts: [{ mountPath: dir, readOnly: true, name: expect.any(String) }] });
    expect(listener.readinessProbe).toBeUndefined();
    // Probed from inside the pod: the NetworkPolicy opens the port to scrapers only, not to the node.
    expect(listener.livenessProbe.exec.command.join(' ')).toContain('http://127.0.0.1:9464/metrics');
    const service = one(objects, 'Service', 'mlflow-metrics');
    expect(service.spec).toMatchObject({ clusterIP: 'None', ports: [{ name: 'metrics', port: 9464, targetPort: 'metrics' }], selector: one(objects, 'Service', 'mlflow').spec.selector });
    expect(one(objects, 'Service', 'mlflow').spec.ports.map((p: any) => p.name)).toEqual(['http']);
    const monitor = one(objects, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    expect(monitor.spec.selector.matchLabels).toEqual(Object.fromEntries(Object.entries(service.metadata.labels!).filter(([k]) => ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component'].includes(k))));
  });

  test('with auth, the monitor needs no credentials: the listener is outside basic auth, behind the NetworkPolicy', () => {
    const objects = withAuth({ metrics: {} });
    expect(one(objects, 'ServiceMonitor').spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    expect(one(objects, 'NetworkPolicy', 'mlflow-tracking-server').spec.ingress).toEqual([
      { ports: [{ port: 5000, protocol: 'TCP' }] },
      { from: [{ namespaceSelector: {} }], ports: [{ port: 9464, protocol: 'TCP' }] },
    ]);
  });

  test('the ServiceMonitor can be left out (no prometheus-operator), and the alert rules with it', () => {
    const objects = synthStack({ metrics: { serviceMonitor: false } });
    expect(objects.some((o) => o.kind === 'ServiceMonitor' || o.kind === 'PrometheusRule')).toBe(false);
    expect(one(objects, 'Service', 'mlflow-metrics')).toBeDefined();
  });
});

describe('garbage collection', () => {
  const objects = withAuth({ garbageCollection: { schedule: '0 4 * * 0', olderThan: Duration.days(14) } });
  const cron = one(objects, 'CronJob', 'mlflow-gc');
  const c = cron.spec.jobTemplate.spec.template.spec.containers[0];

  test('runs mlflow gc on its schedule, never overlapping', () => {
    expect(cron.spec.schedule).toBe('0 4 * * 0');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    // Under the launcher, so a schema migration stops it like a server.
    expect(c.command.slice(0, 2)).toEqual(['python', '-c']);
    expect(c.command[2]).toContain('pg_advisory_lock_shared');
    expect(c.command.slice(3)).toEqual(['/bin/sh', '-c', 'exec mlflow gc --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" --older-than "$MLFLOW_GC_OLDER_THAN"']);
    expect(envOf(c, 'MLFLOW_GC_OLDER_THAN').value).toBe('14d');
  });

  test('deletes proxied artifacts through the server, signed in when auth is on', () => {
    expect(envOf(c, 'MLFLOW_TRACKING_URI').value).toBe('http://mlflow.default.svc.cluster.local:5000');
    expect(envOf(c, 'MLFLOW_TRACKING_PASSWORD').valueFrom.secretKeyRef.key).toBe('MLFLOW_TRACKING_PASSWORD');
  });

  test('is off unless asked for', () => {
    expect(synthStack().some((o) => o.metadata.name === 'mlflow-gc')).toBe(false);
  });

  test.each(['every day', '0 2 * *', '61 * * * *', '0 0 32 * *', '*/0 * * * *', '@sometimes'])('schedule %p is refused', (schedule) => {
    expectConfigError(() => synthStack({ garbageCollection: { schedule } }), /garbageCollection\.schedule must be a cron schedule/);
  });
});

describe('backups', () => {
  const objects = synthStack();
  const cron = one(objects, 'CronJob', 'mlflow-backup');
  const pod = cron.spec.jobTemplate.spec.template.spec;

  test('are on by default with the in-cluster PostgreSQL, nightly, never overlapping', () => {
    expect(cron.spec).toMatchObject({ schedule: '0 2 * * *', concurrencyPolicy: 'Forbid' });
  });

  test('stream pg_dump (the server\'s own PostgreSQL image) through a pipe to S3 beside the artifacts, and prune by retention', () => {
    expect(pod.initContainers).toBeUndefined();
    const [dump, upload] = pod.containers;
    expect(dump.image).toBe(one(objects, 'StatefulSet', 'mlflow-postgres').spec.template.spec.containers[0].image);
    expect(dump.command[2]).toContain('pg_dump --format=custom');
    expect(envOf(dump, 'PGHOST').value).toBe('mlflow-postgres.default.svc.cluster.local');
    expect(envOf(dump, 'PGPASSWORD').valueFrom.secretKeyRef.key).toBe('POSTGRES_PASSWORD');
    expect(dump.command[2]).toContain('pg_dump --format=custom > /backup/dump.fifo');
    expect(upload.command[2]).toContain('mc $insecure pipe "target/$target_bucket/$key.partial" < /backup/dump.fifo');
    expect(upload.command[2]).toContain('mc $insecure mv "target/$target_bucket/$key.partial" "target/$target_bucket/$key"');
    // Only the pipe and a status word: the volume is capped, so no copy of the database can land on the node.
    expect(pod.volumes.find((v: any) => v.name === 'backup').emptyDir.sizeLimit).toBe('16Mi');
    expect(upload.command[2]).toContain('--older-than "${BACKUP_RETENTION_DAYS}d"');
    expect(envOf(upload, 'BACKUP_RETENTION_DAYS').value).toBe('14');
    expect(envOf(upload, 'BACKUP_PREFIX').value).toBe('backups/default/mlflow');
    expect(envOf(upload, 'BACKUP_NAME').value).toBe('mlflow');
    expect(envOf(upload, 'BACKUP_BUCKET')).toBeUndefined();
    for (const script of [dump.command[2], upload.command[2]]) expect(script).not.toMatch(/\$\$|\$\([A-Za-z_][A-Za-z0-9_]*\)/);
  });

  test('are off with an external database, and can be turned on for it', () => {
    const external = { backendStore: BackendStore.external({ host: 'db.example.com' }) };
    expect(synthStack(external).some((o) => o.kind === 'CronJob')).toBe(false);
    expect(one(synthStack({ ...external, backup: { enabled: true, image: 'docker.io/library/postgres:16.10' } }), 'CronJob').spec.jobTemplate.spec.template.spec.containers[0].image).toBe('docker.io/library/postgres:16.10');
  });

  test('never inside the artifact root the server serves: refused at synth, and again by the job', () => {
    const rootAt = (artifactRoot: string) => Credentials.fromValues({ ...TEST_VALUES, artifactRoot });
    expectConfigError(() => synthStack({ credentials: rootAt('s3://mlflow') }),
      /^backup: s3:\/\/mlflow\/backups\/default\/mlflow\/ is inside the artifact root s3:\/\/mlflow, which the tracking server serves to every client; set backup\.bucket to another bucket, or MLFLOW_S3_ARTIFACT_ROOT to a prefix/);
    expectConfigError(() => synthStack({ credentials: rootAt('s3://mlflow/backups'), backup: {} }), /inside the artifact root s3:\/\/mlflow\/backups.*backup\.prefix outside backups\//);
    expectConfigError(() => synthStack({ backup: { prefix: 'runs/dumps' } }), /s3:\/\/mlflow-artifacts\/runs\/dumps\/ is inside the artifact root/);
    const ownBucket = one(synthStack({ credentials: rootAt('s3://mlflow'), backup: { bucket: 'mlflow-backups' } }), 'CronJob').spec.jobTemplate.spec.template.spec.containers[1];
    expect(envOf(ownBucket, 'BACKUP_BUCKET').value).toBe('mlflow-backups');
    expect(synthStack({ backup: { prefix: 'runsX/dumps' } }).some((o) => o.kind === 'CronJob')).toBe(true);
    // An existing Secret's root is unknown at synth: the job itself refuses (see the upload script).
    const upload = one(synthStack({ credentials: Credentials.fromSecretName('s') }), 'CronJob').spec.jobTemplate.spec.template.spec.containers[1];
    expect(upload.command[2]).toContain('backup: refusing s3://$target_bucket/$BACKUP_PREFIX/: it is inside the artifact root');
  });

  test('two installations sharing a bucket get their own backup prefixes and names', () => {
    const prefixOf = (props: object) => envOf(one(synthStack(props), 'CronJob').spec.jobTemplate.spec.template.spec.containers[1], 'BACKUP_PREFIX').value;
    expect(new Set([prefixOf({ name: 'team-a' }), prefixOf({ name: 'team-b' }), prefixOf({ namespace: 'other' })]).size).toBe(3);
  });

  test('bad schedule, retention or prefix is refused', () => {
    expectConfigError(() => synthStack({ backup: { schedule: '0 25 * * *' } }), /backup\.schedule must be a cron schedule.*hour field must stay within 0-23/);
    expectConfigError(() => synthStack({ backup: { retention: Duration.hours(12) } }), /backup\.retention must be a whole number of days/);
    expectConfigError(() => synthStack({ backup: { prefix: '/abs/' } }), /backup\.prefix must be an S3 key prefix/);
    expectConfigError(() => synthStack({ backup: { bucket: 'Bad_Bucket' } }), /backup\.bucket names an invalid bucket "Bad_Bucket"/);
  });
});

test('every new workload runs restricted, with pinned images', () => {
  const objects = withAuth({ metrics: {}, garbageCollection: {}, server: { autoscaling: { maxReplicas: 4 } } });
  for (const { spec } of podSpecs(objects)) {
    for (const c of containersOf(spec)) {
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(c.image).not.toMatch(/:latest$/);
    }
  }
});
