import { Size } from 'cdk8s';
import { ArtifactStore, BackendStore, ConfigError, Credentials, DatabaseEngine, DefaultImages } from '../lib';
import { containersOf, envOf, Manifest, one, podSpecs, secretContent, synthStack, TEST_VALUES } from './support/synth';

/** MLflow 3.x production settings: the writer fence, the AI gateway's passphrase, jobs, workspaces, telemetry, SeaweedFS. */

function expectConfigError(fn: () => unknown, pattern: RegExp): void {
  expect(fn).toThrow(ConfigError);
  expect(fn).toThrow(pattern);
}

const server = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec.containers[0];
const withKek = (extra = {}) => Credentials.fromValues({ ...TEST_VALUES, kekPassphrase: 'a-kek-passphrase-of-some-length', ...extra });

describe('upgrades with every writer stopped', () => {
  const objects = synthStack({ garbageCollection: {} });
  const pod = one(objects, 'Deployment').spec.template.spec;
  const migrate = pod.initContainers[0].command[2];

  test('the migrate step detects a pending migration and takes the writer fence exclusively before migrating', () => {
    expect(migrate).toContain('utils._is_empty_database(engine)');
    expect(migrate).not.toContain('_all_tables_exist(engine)');
    expect(migrate).toMatch(/if not pending:[\s\S]*elif fresh:[\s\S]*pg_advisory_lock\(:key\)"\), \{"key": FENCE_KEY\}[\s\S]*utils\._upgrade_db\(engine\)/);
    expect(migrate).toContain('which this image\'s MLflow does not know');
  });

  test('every long-running MLflow holds the fence shared: the server (idling when fenced) and gc (failing when fenced)', () => {
    const fence = /FENCE_KEY = 0x6D6C6663/;
    expect(migrate).toMatch(fence);
    const mlflow = pod.containers[0];
    expect(mlflow.command[2]).toMatch(fence);
    expect(envOf(mlflow, 'MLFLOW_FENCE_IDLE').value).toBe('true');
    const gc = one(objects, 'CronJob', 'mlflow-gc').spec.jobTemplate.spec.template.spec.containers[0];
    expect(gc.command[2]).toMatch(fence);
    expect(envOf(gc, 'MLFLOW_FENCE_IDLE')).toBeUndefined();
  });

  test('a change without a migration still rolls a pod at a time, and a stopping pod drains first', () => {
    expect(one(objects, 'Deployment').spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(pod.containers[0].lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
  });
});

describe('the AI gateway\'s key-encryption passphrase', () => {
  test('off, and said so to MLflow, when the credentials carry no passphrase', () => {
    const objects = synthStack();
    expect(envOf(server(objects), 'MLFLOW_ENABLE_AI_GATEWAY').value).toBe('false');
    expect(envOf(server(objects), 'MLFLOW_CRYPTO_KEK_PASSPHRASE')).toBeUndefined();
  });

  test('on with a passphrase, which reaches the server only from the Secret, with its version', () => {
    const objects = synthStack({ credentials: withKek({ kekVersion: '3' }) });
    const mlflow = server(objects);
    expect(envOf(mlflow, 'MLFLOW_ENABLE_AI_GATEWAY')).toBeUndefined();
    expect(envOf(mlflow, 'MLFLOW_CRYPTO_KEK_PASSPHRASE').valueFrom.secretKeyRef.key).toBe('MLFLOW_CRYPTO_KEK_PASSPHRASE');
    expect(envOf(mlflow, 'MLFLOW_CRYPTO_KEK_VERSION').valueFrom.secretKeyRef.key).toBe('MLFLOW_CRYPTO_KEK_VERSION');
    expect(secretContent(one(objects, 'Secret'))).toMatchObject({ MLFLOW_CRYPTO_KEK_PASSPHRASE: 'a-kek-passphrase-of-some-length', MLFLOW_CRYPTO_KEK_VERSION: '3' });
    expect(secretContent(one(synthStack({ credentials: withKek() }), 'Secret')).MLFLOW_CRYPTO_KEK_VERSION).toBe('1');
  });

  test('can be turned off, and on only with a passphrase (never MLflow\'s shared development one)', () => {
    expect(envOf(server(synthStack({ credentials: withKek(), server: { gateway: { enabled: false } } })), 'MLFLOW_ENABLE_AI_GATEWAY').value).toBe('false');
    expectConfigError(() => synthStack({ server: { gateway: { enabled: true } } }), /server\.gateway is on but the credentials have no MLFLOW_CRYPTO_KEK_PASSPHRASE/);
    const existing = server(synthStack({ credentials: Credentials.fromSecretName('s'), server: { gateway: { enabled: true } } }));
    expect(envOf(existing, 'MLFLOW_CRYPTO_KEK_PASSPHRASE').valueFrom.secretKeyRef).toMatchObject({ name: 's', key: 'MLFLOW_CRYPTO_KEK_PASSPHRASE' });
  });

  test('a short passphrase or a bad version is refused', () => {
    expectConfigError(() => withKek({ kekPassphrase: 'short' }), /MLFLOW_CRYPTO_KEK_PASSPHRASE must be at least 16 characters/);
    expectConfigError(() => withKek({ kekVersion: '0' }), /MLFLOW_CRYPTO_KEK_VERSION must be a whole number from 1/);
  });
});

describe('background jobs', () => {
  test('off by default, with MLflow told so', () => {
    expect(envOf(server(synthStack()), 'MLFLOW_SERVER_ENABLE_JOB_EXECUTION').value).toBe('false');
  });

  test('on only with one replica, replaced without overlap', () => {
    const objects = synthStack({ server: { replicas: 1, jobs: { enabled: true } } });
    expect(envOf(server(objects), 'MLFLOW_SERVER_ENABLE_JOB_EXECUTION').value).toBe('true');
    expect(one(objects, 'Deployment').spec.strategy).toEqual({ type: 'Recreate' });
    expectConfigError(() => synthStack({ server: { jobs: { enabled: true } } }), /server\.jobs needs server\.replicas: 1 and no server\.autoscaling/);
    expectConfigError(() => synthStack({ server: { replicas: undefined, autoscaling: { maxReplicas: 3 }, jobs: { enabled: true } } }), /server\.jobs needs/);
  });
});

test('workspaces are an option', () => {
  expect(envOf(server(synthStack()), 'MLFLOW_ENABLE_WORKSPACES')).toBeUndefined();
  expect(envOf(server(synthStack({ server: { workspaces: { enabled: true } } })), 'MLFLOW_ENABLE_WORKSPACES').value).toBe('true');
});

test('telemetry is off in every MLflow container unless asked for', () => {
  const mlflowContainers = (objects: Manifest[]) => podSpecs(objects).flatMap(({ spec }) => containersOf(spec)).filter((c) => c.image === DefaultImages.MLFLOW);
  const off = mlflowContainers(synthStack({ garbageCollection: {} }));
  expect(off.map((c) => c.name).sort()).toEqual(['gc', 'migrate', 'mlflow']);
  for (const c of off) expect(envOf(c, 'MLFLOW_DISABLE_TELEMETRY').value).toBe('true');
  for (const c of mlflowContainers(synthStack({ garbageCollection: {}, server: { telemetry: { enabled: true } } }))) expect(envOf(c, 'MLFLOW_DISABLE_TELEMETRY')).toBeUndefined();
});

describe('SeaweedFS as the in-cluster S3', () => {
  const objects = synthStack({ artifactStore: ArtifactStore.seaweedfs({ storage: Size.gibibytes(30) }) });
  const sts = one(objects, 'StatefulSet', 'mlflow-seaweedfs');
  const c = sts.spec.template.spec.containers[0];

  test('one weed server with S3 on 8333, its own probes, PVC and credentials from the Secret', () => {
    expect(c.image).toBe('docker.io/chrislusf/seaweedfs:4.48_large_disk');
    expect(c.command).toEqual(['/usr/bin/weed']);
    expect(c.args).toEqual(expect.arrayContaining(['server', '-dir=/data', '-s3', '-s3.port=8333']));
    expect(c.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 's3' });
    expect(envOf(c, 'AWS_SECRET_ACCESS_KEY').valueFrom.secretKeyRef.key).toBe('AWS_SECRET_ACCESS_KEY');
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('30Gi');
    expect(one(objects, 'Service', 'mlflow-seaweedfs').spec.ports).toEqual([{ name: 's3', port: 8333, targetPort: 's3' }]);
    expect(objects.some((o) => o.metadata.name === 'mlflow-minio')).toBe(false);
  });

  test('the server, the bucket Job and backups use it; only they may reach it', () => {
    expect(secretContent(one(objects, 'Secret')).MLFLOW_S3_ENDPOINT_URL).toBe('http://mlflow-seaweedfs.default.svc.cluster.local:8333');
    const policy = one(objects, 'NetworkPolicy', 'mlflow-seaweedfs');
    expect(policy.spec.podSelector.matchLabels['app.kubernetes.io/name']).toBe('seaweedfs');
    expect(policy.spec.ingress[0].ports).toEqual([{ port: 8333, protocol: 'TCP' }]);
  });
});

test('a MySQL backend with the fence: the launcher runs the program directly there', () => {
  const objects = synthStack({ backendStore: BackendStore.external({ engine: DatabaseEngine.MYSQL, host: 'db' }) });
  expect(server(objects).command[2]).toContain('if engine.dialect.name != "postgresql":\n    os.execvp(program[0], program)');
});
