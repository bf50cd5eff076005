import { Size } from 'cdk8s';
import { ArtifactServing, ArtifactStore, BackendStore, Credentials, DefaultImages, MlflowStack, SecretKeys } from '../lib';
import { Chart, Testing } from 'cdk8s';
import { containersOf, envOf, one, podSpecs, secretContent, synthStack, TEST_VALUES } from './support/synth';

const objects = synthStack();

describe('default stack', () => {
  test('puts everything in the default namespace and emits no Namespace, so an uninstall keeps the volumes', () => {
    expect(objects.some((o) => o.kind === 'Namespace')).toBe(false);
    for (const o of objects) expect(o.metadata.namespace).toBe('default');
  });

  test('with createNamespace, the Namespace comes first and holds everything', () => {
    const withNamespace = synthStack({ namespace: 'ml', createNamespace: true });
    expect(withNamespace[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'ml' } });
    for (const o of withNamespace.slice(1)) expect(o.metadata.namespace).toBe('ml');
  });

  test('has exactly the expected objects, with fixed names', () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(expect.arrayContaining([
      'Secret/mlflow-credentials',
      'Service/mlflow-postgres', 'StatefulSet/mlflow-postgres',
      'Service/mlflow-minio', 'StatefulSet/mlflow-minio',
      'Deployment/mlflow', 'Service/mlflow', 'CronJob/mlflow-backup',
      'NetworkPolicy/mlflow-tracking-server', 'NetworkPolicy/mlflow-bucket-job', 'NetworkPolicy/mlflow-backup',
      'NetworkPolicy/mlflow-postgres', 'NetworkPolicy/mlflow-minio', 'PodDisruptionBudget/mlflow',
    ]));
    expect(names.filter((n) => n.startsWith('Job/mlflow-bucket-'))).toHaveLength(1);
    expect(objects).toHaveLength(15);
  });

  test('every object carries the recommended labels', () => {
    for (const o of objects) {
      for (const key of ['name', 'instance', 'component', 'part-of', 'managed-by', 'version']) {
        expect(o.metadata.labels?.[`app.kubernetes.io/${key}`]).toBeTruthy();
      }
    }
  });

  test('selectors use only stable labels and match their pod templates', () => {
    for (const { owner, labels } of podSpecs(objects)) {
      if (owner.kind === 'Job' || owner.kind === 'CronJob') continue;
      const selector = owner.spec.selector.matchLabels;
      expect(Object.keys(selector).sort()).toEqual(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name']);
      for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v);
      expect(Object.keys(labels).some((k) => k.startsWith('cdk8s.io/'))).toBe(false);
    }
  });

  test('synthesizes identically twice', () => {
    expect(synthStack()).toEqual(objects);
  });
});

describe('credentials Secret', () => {
  const secret = secretContent(one(objects, 'Secret'));

  test('holds every .env key and the assembled database URI', () => {
    expect(secret).toMatchObject({
      POSTGRES_USER: TEST_VALUES.postgresUser,
      POSTGRES_PASSWORD: TEST_VALUES.postgresPassword,
      POSTGRES_DB: TEST_VALUES.postgresDb,
      AWS_ACCESS_KEY_ID: TEST_VALUES.awsAccessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_VALUES.awsSecretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      MLFLOW_S3_ARTIFACT_ROOT: TEST_VALUES.artifactRoot,
      MLFLOW_S3_ENDPOINT_URL: 'http://mlflow-minio.default.svc.cluster.local:9000',
    });
  });

  test('the URI names the driver and percent-encodes every special character', () => {
    const uri = secret[SecretKeys.MLFLOW_BACKEND_STORE_URI];
    expect(uri).toBe('postgresql+psycopg2://mlflow:p%40ss%3Aw%2Frd%23%25%3F%26%27%22q@mlflow-postgres.default.svc.cluster.local:5432/mlflow');
    // What SQLAlchemy does: split at the last '@', then at the first ':', then unquote.
    const userinfo = uri.slice('postgresql+psycopg2://'.length, uri.lastIndexOf('@'));
    expect(decodeURIComponent(userinfo.slice(userinfo.indexOf(':') + 1))).toBe(TEST_VALUES.postgresPassword);
  });

  test('no Secret is written for an existing Secret', () => {
    const existing = synthStack({ credentials: Credentials.fromSecretName('team-secret') });
    expect(existing.filter((o) => o.kind === 'Secret')).toHaveLength(0);
    for (const { spec } of podSpecs(existing)) {
      for (const c of containersOf(spec)) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) expect(e.valueFrom.secretKeyRef.name).toBe('team-secret');
      }
    }
  });
});

describe('PostgreSQL', () => {
  const sts = one(objects, 'StatefulSet', 'mlflow-postgres');
  const pod = sts.spec.template.spec;
  const container = pod.containers[0];

  test('has one claim per replica, retained on delete, sized 10Gi by default', () => {
    expect(sts.spec.volumeClaimTemplates).toHaveLength(1);
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('10Gi');
    expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBeUndefined();
    expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
  });

  test('storage size and class are configurable', () => {
    const custom = one(synthStack({ backendStore: BackendStore.postgres({ storage: Size.gibibytes(50), storageClassName: 'fast' }) }), 'StatefulSet', 'mlflow-postgres');
    expect(custom.spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: 'fast', resources: { requests: { storage: '50Gi' } } });
  });

  test('keeps PGDATA in a subdirectory of the volume, so initdb works on a fresh disk', () => {
    const mount = container.volumeMounts.find((m: any) => m.name === 'data').mountPath;
    const pgdata = envOf(container, 'PGDATA').value;
    expect(pgdata.startsWith(`${mount}/`)).toBe(true);
  });

  test('probes with pg_isready over TCP', () => {
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(probe.exec.command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
      expect(probe.exec.command[2]).toMatch(/^exec pg_isready --host=127\.0\.0\.1 --port=5432 .*--username="\$POSTGRES_USER"/);
    }
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(300);
  });

  test('runs as the image\'s postgres user with the pinned image', () => {
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, fsGroup: 999, runAsNonRoot: true });
    expect(container.image).toBe(DefaultImages.POSTGRES);
  });

  test('reads user, password and database from the Secret', () => {
    for (const name of ['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB']) {
      expect(envOf(container, name).valueFrom.secretKeyRef).toEqual({ name: 'mlflow-credentials', key: name });
    }
  });

  test('its Service is headless on 5432 and selects the pod', () => {
    const svc = one(objects, 'Service', 'mlflow-postgres');
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.ports).toEqual([{ name: 'postgres', port: 5432, targetPort: 'postgres' }]);
    expect(svc.spec.selector).toEqual(sts.spec.selector.matchLabels);
  });

  test('an external database deploys no PostgreSQL and points the URI at it', () => {
    const external = synthStack({ backendStore: BackendStore.external({ host: 'db.example.com', port: 6432, sslMode: 'require' }) });
    expect(external.some((o) => o.metadata.name === 'mlflow-postgres')).toBe(false);
    expect(secretContent(one(external, 'Secret')).MLFLOW_BACKEND_STORE_URI).toMatch(/@db\.example\.com:6432\/mlflow\?sslmode=require$/);
  });
});

describe('MinIO', () => {
  const sts = one(objects, 'StatefulSet', 'mlflow-minio');
  const container = sts.spec.template.spec.containers[0];

  test('serves the S3 API on 9000 and the console on 9001', () => {
    const svc = one(objects, 'Service', 'mlflow-minio');
    expect(svc.spec.ports.map((p: any) => p.port)).toEqual([9000, 9001]);
    expect(container.args).toEqual(expect.arrayContaining(['server', '/data', '--console-address', ':9001']));
    expect(svc.spec.selector).toEqual(sts.spec.selector.matchLabels);
  });

  test('probes the live and ready health endpoints', () => {
    expect(container.livenessProbe.httpGet.path).toBe('/minio/health/live');
    expect(container.readinessProbe.httpGet.path).toBe('/minio/health/ready');
  });

  test('stores data on a retained claim and uses a registry that still serves MinIO', () => {
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('20Gi');
    expect(container.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    expect(container.image).toMatch(/^quay\.io\/minio\/minio:RELEASE\./);
  });

  test('root user and password come from the S3 keys of the Secret', () => {
    expect(envOf(container, 'MINIO_ROOT_USER').valueFrom.secretKeyRef.key).toBe('AWS_ACCESS_KEY_ID');
    expect(envOf(container, 'MINIO_ROOT_PASSWORD').valueFrom.secretKeyRef.key).toBe('AWS_SECRET_ACCESS_KEY');
  });

  test('an S3 endpoint in the credentials replaces MinIO', () => {
    const external = synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, s3EndpointUrl: 'https://s3.example.com/' }) });
    expect(external.some((o) => o.metadata.name === 'mlflow-minio')).toBe(false);
    expect(secretContent(one(external, 'Secret')).MLFLOW_S3_ENDPOINT_URL).toBe('https://s3.example.com');
  });
});

describe('bucket Job', () => {
  const job = one(objects, 'Job');
  const container = job.spec.template.spec.containers[0];

  test('runs a shell script in the mc image that waits (bounded) and makes the bucket idempotently', () => {
    expect(container.image).toBe(DefaultImages.MINIO_CLIENT);
    expect(container.command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    const script = container.command[2];
    expect(script).toContain('mb --ignore-existing');
    expect(script).toMatch(/attempts=/);
    expect(envOf(container, 'BUCKET_WAIT_SECONDS').value).toBe('300');
    expect(envOf(container, 'MLFLOW_S3_ARTIFACT_ROOT').valueFrom.secretKeyRef.key).toBe('MLFLOW_S3_ARTIFACT_ROOT');
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(300);
  });

  test('the script never uses $$ or $(NAME), which the kubelet would rewrite', () => {
    expect(container.command[2]).not.toMatch(/\$\$|\$\([A-Za-z_][A-Za-z0-9_]*\)/);
  });

  test('its name changes with its content and only then', () => {
    const same = one(synthStack(), 'Job').metadata.name;
    const otherImage = one(synthStack({ bucketJob: { image: 'quay.io/minio/mc:RELEASE.2025-07-21T05-28-08Z' } }), 'Job').metadata.name;
    const otherBucket = one(synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, artifactRoot: 's3://other/x' }) }), 'Job').metadata.name;
    const otherPassword = one(synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, postgresPassword: 'another-password' }) }), 'Job').metadata.name;
    expect(same).toBe(job.metadata.name);
    expect(otherImage).not.toBe(job.metadata.name);
    expect(otherBucket).not.toBe(job.metadata.name);
    expect(otherPassword).toBe(job.metadata.name);
  });

  test('also runs for an external endpoint, with the endpoint from the Secret', () => {
    const external = synthStack({ artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com', ignoreTls: true }) });
    const c = one(external, 'Job').spec.template.spec.containers[0];
    expect(envOf(c, 'MLFLOW_S3_ENDPOINT_URL').valueFrom.secretKeyRef.key).toBe('MLFLOW_S3_ENDPOINT_URL');
    expect(envOf(c, 'MLFLOW_S3_IGNORE_TLS').value).toBe('true');
  });
});

describe('tracking server', () => {
  const deployment = one(objects, 'Deployment');
  const pod = deployment.spec.template.spec;
  const server = pod.containers.find((c: any) => c.name === 'mlflow');
  const migrate = pod.initContainers.find((c: any) => c.name === 'migrate');

  test('uses an image with psycopg2 and boto3 and listens on 0.0.0.0:5000', () => {
    expect(server.image).toBe(DefaultImages.MLFLOW);
    expect(server.image).toMatch(/-full$/);
    // Under the launcher that holds the writer fence (lib/server/serve.py).
    expect(server.command.slice(0, 2)).toEqual(['python', '-c']);
    expect(server.command[2]).toContain('pg_advisory_lock_shared');
    expect(server.args).toEqual(['mlflow', 'server', '--host', '0.0.0.0', '--port', '5000', '--workers', '2', '--serve-artifacts']);
  });

  test('reads the database URI and S3 settings from the Secret, never from args', () => {
    expect(envOf(server, 'MLFLOW_BACKEND_STORE_URI').valueFrom.secretKeyRef).toMatchObject({ name: 'mlflow-credentials', key: 'MLFLOW_BACKEND_STORE_URI' });
    expect(envOf(server, 'MLFLOW_ARTIFACTS_DESTINATION').valueFrom.secretKeyRef.key).toBe('MLFLOW_S3_ARTIFACT_ROOT');
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_DEFAULT_REGION', 'MLFLOW_S3_ENDPOINT_URL']) {
      expect(envOf(server, name).valueFrom.secretKeyRef.key).toBe(name);
    }
  });

  test('direct artifact mode sets the default artifact root instead of proxying', () => {
    const direct = one(synthStack({ server: { artifactServing: ArtifactServing.DIRECT } }), 'Deployment').spec.template.spec.containers[0];
    expect(direct.args).toContain('--no-serve-artifacts');
    expect(envOf(direct, 'MLFLOW_DEFAULT_ARTIFACT_ROOT').valueFrom.secretKeyRef.key).toBe('MLFLOW_S3_ARTIFACT_ROOT');
    expect(envOf(direct, 'MLFLOW_ARTIFACTS_DESTINATION')).toBeUndefined();
  });

  test('a migrate init container waits (bounded) for PostgreSQL and migrates under an advisory lock', () => {
    expect(migrate.image).toBe(server.image);
    expect(migrate.command.slice(0, 2)).toEqual(['python', '-c']);
    expect(migrate.command[2]).toContain('pg_advisory_lock');
    expect(migrate.command[2]).toContain('authentication failed');
    expect(envOf(migrate, 'MLFLOW_DB_WAIT_SECONDS').value).toBe('300');
    expect(envOf(migrate, 'MLFLOW_BACKEND_STORE_URI').valueFrom.secretKeyRef.key).toBe('MLFLOW_BACKEND_STORE_URI');
  });

  test('probes /health, with a startup budget of minutes', () => {
    for (const probe of [server.startupProbe, server.readinessProbe, server.livenessProbe]) {
      expect(probe.httpGet).toMatchObject({ path: '/health', port: 5000 });
    }
    expect(server.startupProbe.periodSeconds * server.startupProbe.failureThreshold).toBeGreaterThanOrEqual(300);
  });

  test('accepts the NodePort and in-cluster Service names as Host headers', () => {
    const hosts = envOf(server, 'MLFLOW_SERVER_ALLOWED_HOSTS').value.split(',');
    expect(hosts).toEqual(expect.arrayContaining([
      'localhost:*', '10.*', '192.168.*', '172.16.*', '172.31.*',
      'mlflow', 'mlflow:*', 'mlflow.default:*', 'mlflow.default.svc:*', 'mlflow.default.svc.cluster.local:*',
    ]));
    const origins = envOf(server, 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS').value.split(',');
    expect(origins).toEqual(expect.arrayContaining(['http://10.*', 'http://mlflow.default.svc.cluster.local:*']));
  });

  test('extra allowed hosts and origins are added, not substituted', () => {
    const c = one(synthStack({ server: { allowedHosts: ['203.0.113.7:30003'], corsAllowedOrigins: ['https://nb.example.com'] } }), 'Deployment').spec.template.spec.containers[0];
    expect(envOf(c, 'MLFLOW_SERVER_ALLOWED_HOSTS').value.split(',')).toEqual(expect.arrayContaining(['203.0.113.7:30003', 'mlflow:*', '10.*']));
    expect(envOf(c, 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS').value.split(',')).toEqual(expect.arrayContaining(['https://nb.example.com', 'http://203.0.113.7:30003']));
  });

  test('never advertises presigned S3 transfers, which would send clients to the in-cluster endpoint', () => {
    expect(envOf(server, 'MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD').value).toBe('false');
    expect(envOf(server, 'MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD').value).toBe('false');
  });

  test('disables service links, so MLFLOW_PORT=tcp://... is never injected', () => {
    expect(pod.enableServiceLinks).toBe(false);
  });

  test('replicas, workers and resources are decisions, and configurable', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(server.resources).toEqual({ requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } });
    const custom = one(synthStack({ server: { replicas: 4, workers: 8 } }), 'Deployment');
    expect(custom.spec.replicas).toBe(4);
    expect(custom.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--workers', '8']));
  });

  test('its NodePort Service maps 30003 to port 5000', () => {
    const svc = one(objects, 'Service', 'mlflow');
    expect(svc.spec.type).toBe('NodePort');
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 5000, targetPort: 5000, nodePort: 30003 }]);
    expect(svc.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });
});

describe('every container', () => {
  test.each(podSpecs(objects).flatMap(({ owner, spec }) => containersOf(spec).map((c) => [`${owner.kind}/${owner.metadata.name}/${c.name}`, c])))(
    '%s has a pinned image, IfNotPresent pulls and explicit requests and limits',
    (_name, c: any) => {
      expect(c.image).toMatch(/^[^:@]+(:[^:]+|@sha256:[a-f0-9]{64})$/);
      expect(c.image).not.toMatch(/:latest$/);
      expect(c.imagePullPolicy).toBe('IfNotPresent');
      expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    },
  );

  test('images are overridable', () => {
    const custom = synthStack({
      backendStore: BackendStore.postgres({ image: 'r.example.com/postgres:17.7' }),
      artifactStore: ArtifactStore.minio({ image: 'r.example.com/minio:RELEASE.x' }),
      server: { image: 'r.example.com/mlflow:3.18.0' },
      bucketJob: { image: 'r.example.com/mc:RELEASE.y' },
    });
    const images = podSpecs(custom).flatMap(({ spec }) => containersOf(spec).map((c) => c.image));
    expect(new Set(images)).toEqual(new Set(['r.example.com/postgres:17.7', 'r.example.com/minio:RELEASE.x', 'r.example.com/mlflow:3.18.0', 'r.example.com/mc:RELEASE.y']));
  });
});

describe('outputs', () => {
  test('name the Service, the in-cluster tracking URI, the node port and the Secret', () => {
    const chart = new Chart(Testing.app(), 'outputs');
    const stack = new MlflowStack(chart, 'mlflow', { credentials: Credentials.fromValues(TEST_VALUES), name: 'ml', namespace: 'team', server: { nodePort: 31000 } });
    expect(stack.serviceName).toBe('ml');
    expect(stack.trackingUri).toBe('http://ml.team.svc.cluster.local:5000');
    expect(stack.nodePort).toBe(31000);
    expect(stack.secretName).toBe('ml-credentials');
    expect(stack.namespace).toBe('team');
    expect(stack.bucketJobName).toMatch(/^ml-bucket-[0-9a-f]{8}$/);
  });
});
