// The TypeScript twin of app.py: the same stacks from the same inputs, through the public API.
// Usage: CDK8S_OUTDIR=dir tsx __tests__/python/app.ts <default|custom|production>
import * as path from 'path';
import { App, Chart, Duration, Size } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';
import { ArtifactStore, BackendStore, Credentials, MlflowStack, MlflowStackProps, Permission } from '../../lib';

const ENV_EXAMPLE = path.resolve(__dirname, '..', '..', '.env.example');
const VALUES = {
  postgresUser: 'mlflow',
  postgresPassword: `p@ss:w/rd#%?&'"q`,
  postgresDb: 'mlflow',
  awsAccessKeyId: 'minio-admin',
  awsSecretAccessKey: 'S3cr3t+key/with=chars',
  artifactRoot: 's3://mlflow-artifacts/runs',
};

const CONFIGURATIONS: Record<string, () => MlflowStackProps> = {
  default: () => ({ credentials: Credentials.fromEnvFile(ENV_EXAMPLE) }),
  custom: () => ({
    credentials: Credentials.fromValues(VALUES),
    name: 'tracking',
    namespace: 'ml-platform',
    createNamespace: true,
    clusterDomain: 'corp.internal',
    server: {
      nodePort: 31555,
      replicas: 3,
      workers: 4,
      image: 'registry.example.com/mlflow:3.18.0-custom',
      allowedHosts: ['mlflow.example.com', '203.0.113.7:31555'],
      corsAllowedOrigins: ['https://notebooks.example.com'],
      resources: { cpu: { request: Cpu.millis(500), limit: Cpu.units(4) }, memory: { request: Size.gibibytes(2), limit: Size.gibibytes(4) } },
      databaseWaitTimeout: Duration.minutes(10),
    },
    backendStore: BackendStore.postgres({ storage: Size.gibibytes(50), storageClassName: 'fast-ssd' }),
    artifactStore: ArtifactStore.minio({ storage: Size.gibibytes(200), storageClassName: 'standard' }),
    bucketJob: { waitTimeout: Duration.minutes(2) },
  }),
  production: () => ({
    credentials: Credentials.fromValues({ ...VALUES, adminUsername: 'root', adminPassword: 'admin-pass%word#12' }),
    backendStore: BackendStore.external({ host: 'db.example.com', port: 6432, sslMode: 'require' }),
    artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com', ignoreTls: true }),
    auth: { defaultPermission: Permission.NO_PERMISSIONS },
    ingress: { host: 'mlflow.example.com', tlsSecretName: 'mlflow-tls', className: 'nginx', maxBodySize: Size.gibibytes(5) },
    metrics: { interval: Duration.seconds(15) },
    garbageCollection: { schedule: '@daily', olderThan: Duration.days(7) },
    backup: { schedule: '15 1 * * 1-5', retention: Duration.days(30) },
    server: { autoscaling: { minReplicas: 2, maxReplicas: 6 } },
  }),
};

const configure = CONFIGURATIONS[process.argv[2]];
if (!configure) throw new Error(`usage: app.ts <${Object.keys(CONFIGURATIONS).join('|')}>`);
const app = new App();
new MlflowStack(new Chart(app, 'mlflow'), 'mlflow', configure());
app.synth();
