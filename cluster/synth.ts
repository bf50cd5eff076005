/**
 * Synthesizes the configurations the cluster suite applies, each into its own directory.
 *
 *   npx tsx cluster/synth.ts <out-root> <name>...      writes <out-root>/<name>/*.k8s.yaml
 *
 * `default` is not here: the suite gets it from the real `npm run synth` path (scripts/synth.js,
 * main.ts, .env.example), see synthDefault() in util.ts.
 */
import * as path from 'path';
import { App, Chart, Duration, Size } from 'cdk8s';
import { ArtifactStore, BackendStore, Credentials, CredentialValues, DatabaseEngine, MlflowStack, MlflowStackProps, ServiceExposure } from '../lib';

const repoRoot = path.resolve(__dirname, '..');
const exampleEnv = path.join(repoRoot, '.env.example');

const values: CredentialValues = {
  postgresUser: 'mlflow',
  postgresPassword: 'p@ss:w/rd with spaces',
  postgresDb: 'mlflow',
  awsAccessKeyId: 'minio-admin',
  awsSecretAccessKey: 'minio-secret-key',
  artifactRoot: 's3://mlflow-artifacts/runs',
};

/**
 * Each configuration has its own namespace and NodePort, so several can live in one cluster; the
 * ones whose namespace is not created by the stack need it to exist first (the tests make it).
 */
export const CONFIGURATIONS: Record<string, () => MlflowStackProps> = {
  /** The library's defaults, as main.ts builds them, spelled out. */
  'library-default': () => ({ credentials: Credentials.fromEnvFile(exampleEnv) }),
  /** Same names as the default app, every setting that can change changed (tags no default will ever have). */
  'changed': () => ({
    credentials: Credentials.fromValues({ ...values, awsRegion: 'eu-west-1' }),
    backendStore: BackendStore.postgres({ image: 'docker.io/library/postgres:17.99-bookworm' }),
    artifactStore: ArtifactStore.minio({ image: 'quay.io/minio/minio:RELEASE.2099-01-01T00-00-00Z' }),
    server: {
      image: 'ghcr.io/mlflow/mlflow:v3.99.0-full',
      replicas: 3,
      workers: 4,
      allowedHosts: ['mlflow.example.com'],
      corsAllowedOrigins: ['https://notebooks.example.com'],
    },
    bucketJob: { image: 'quay.io/minio/mc:RELEASE.2099-02-02T00-00-00Z' },
    backup: { schedule: '15 1 * * *', retention: Duration.days(7) },
  }),
  'external-db': () => ({
    namespace: 'ext-db',
    createNamespace: true,
    credentials: Credentials.fromValues(values),
    backendStore: BackendStore.external({ host: 'postgres.example.com', port: 6432, sslMode: 'require' }),
    server: { nodePort: 30101 },
  }),
  'external-s3': () => ({
    namespace: 'ext-s3',
    credentials: Credentials.fromValues(values),
    artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com', ignoreTls: true }),
    server: { nodePort: 30102 },
  }),
  'all-external': () => ({
    namespace: 'ext-all',
    credentials: Credentials.fromValues(values),
    backendStore: BackendStore.external({ host: '10.20.30.40' }),
    artifactStore: ArtifactStore.s3(),
    networkPolicies: { enabled: false },
    server: { nodePort: 30103 },
  }),
  'existing-secret': () => ({
    namespace: 'byo-secret',
    credentials: Credentials.fromSecretName('team-mlflow-credentials'),
    server: { nodePort: 30104 },
  }),
  'other-namespace': () => ({
    name: 'tracking',
    namespace: 'team-a',
    createNamespace: true,
    credentials: Credentials.fromValues(values),
    server: { nodePort: 31234, replicas: 1 },
  }),
  /** The namespace is made by someone else (the default: createNamespace false). */
  'own-namespace': () => ({
    namespace: 'precreated',
    credentials: Credentials.fromValues(values),
    server: { nodePort: 30105 },
  }),
  /** Every optional part on: basic auth, Ingress, ServiceMonitor (needs its CRD), GC and backup CronJobs. */
  'everything': () => ({
    namespace: 'full',
    createNamespace: true,
    credentials: Credentials.fromValues({
      ...values,
      adminUsername: 'admin',
      adminPassword: 'an-admin-password-1234',
      flaskSecretKey: 'a-flask-secret-key-of-some-length',
    }),
    auth: { enabled: true },
    ingress: { host: 'mlflow.example.com', tlsSecretName: 'mlflow-tls', className: 'nginx', maxBodySize: Size.gibibytes(1) },
    metrics: { serviceMonitor: true },
    garbageCollection: { schedule: '0 4 * * 0', olderThan: Duration.days(7) },
    backup: { enabled: true },
    server: { nodePort: 30106 },
  }),

  /** External MySQL, SeaweedFS, and MLflow 3's settings (gateway, jobs with one replica, workspaces, telemetry). */
  'mysql-seaweedfs-mlflow3': () => ({
    namespace: 'mlflow3',
    credentials: Credentials.fromValues({ ...values, kekPassphrase: 'a-kek-passphrase-of-some-length' }),
    backendStore: BackendStore.external({ engine: DatabaseEngine.MYSQL, host: 'mariadb.data.svc', sslMode: 'required' }),
    artifactStore: ArtifactStore.seaweedfs(),
    server: { nodePort: 30107, replicas: 1, jobs: { enabled: true }, workspaces: { enabled: true }, publicHosts: ['54.180.12.34'] },
    garbageCollection: {},
  }),
  /** Single sign-on behind a Gateway API route, the Service ClusterIP only, SeaweedFS with backups. */
  'sso-route': () => ({
    namespace: 'sso',
    credentials: Credentials.fromValues({ ...values, ssoClientSecret: 'provider-client-secret', ssoCookieSecret: '0123456789abcdef0123456789abcdef' }),
    artifactStore: ArtifactStore.seaweedfs(),
    sso: { issuerUrl: 'https://login.example.com/realms/ml', clientId: 'mlflow', redirectUrl: 'https://mlflow.example.com/oauth2/callback', allowedGroups: ['ml-team'] },
    httpRoute: { gatewayName: 'public', gatewayNamespace: 'gateways', hostnames: ['mlflow.example.com'] },
    server: { exposure: ServiceExposure.CLUSTER_IP },
  }),
};

export function synth(name: string, outdir: string): void {
  const props = CONFIGURATIONS[name];
  if (!props) throw new Error(`unknown configuration ${name}; known: ${Object.keys(CONFIGURATIONS).join(', ')}`);
  const app = new App({ outdir });
  const chart = new Chart(app, 'mlflow');
  new MlflowStack(chart, 'mlflow', props());
  app.synth();
}

if (require.main === module) {
  const [outRoot, ...names] = process.argv.slice(2);
  if (!outRoot || names.length === 0) {
    process.stderr.write(`usage: npx tsx cluster/synth.ts <out-root> <name>...\nnames: ${Object.keys(CONFIGURATIONS).join(' ')}\n`);
    process.exit(2);
  }
  for (const name of names) synth(name, path.join(outRoot, name));
}
