import { Duration, Size } from 'cdk8s';
import { Cpu } from 'cdk8s-plus-28';
import { ArtifactServing, ArtifactStore, BackendStore, Credentials, DatabaseEngine, MlflowStackProps, Permission, ServiceExposure } from '../../lib';
import { TEST_VALUES } from './synth';

/** The default stack and several non-default ones; every check that holds for all runs over these. */
export const CONFIGURATIONS: Record<string, Partial<MlflowStackProps>> = {
  'default': {},
  'external database and S3 endpoint': {
    backendStore: BackendStore.external({ host: 'db.example.com', port: 6432, sslMode: 'require' }),
    artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com', ignoreTls: true }),
  },
  'AWS S3, direct artifacts': {
    artifactStore: ArtifactStore.s3(),
    server: { artifactServing: ArtifactServing.DIRECT },
  },
  'existing Secret': { credentials: Credentials.fromSecretName('team-mlflow-credentials') },
  'other namespace, name and node port': {
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
    backendStore: BackendStore.postgres({ storage: Size.gibibytes(50), storageClassName: 'fast-ssd', image: 'docker.io/library/postgres:16.10-bookworm' }),
    artifactStore: ArtifactStore.minio({ storage: Size.gibibytes(200), storageClassName: 'standard' }),
    bucketJob: { waitTimeout: Duration.minutes(2) },
  },
  'every production feature': {
    credentials: Credentials.fromValues({ ...TEST_VALUES, adminUsername: 'root', adminPassword: 'admin-pass%word#12' }),
    auth: { defaultPermission: Permission.NO_PERMISSIONS },
    ingress: { host: 'mlflow.example.com', tlsSecretName: 'mlflow-tls', className: 'nginx', maxBodySize: Size.gibibytes(5) },
    metrics: { interval: Duration.seconds(15) },
    garbageCollection: { schedule: '@daily', olderThan: Duration.days(7) },
    backup: { schedule: '15 1 * * 1-5', retention: Duration.days(30) },
    server: { autoscaling: { minReplicas: 2, maxReplicas: 6 } },
  },
  'SeaweedFS and every MLflow 3 setting': {
    credentials: Credentials.fromValues({ ...TEST_VALUES, kekPassphrase: 'a-kek-passphrase-of-some-length', kekVersion: '2' }),
    artifactStore: ArtifactStore.seaweedfs({ storage: Size.gibibytes(50) }),
    server: { replicas: 1, jobs: { enabled: true }, workspaces: { enabled: true }, telemetry: { enabled: true } },
    garbageCollection: {},
  },
  'external MySQL': {
    backendStore: BackendStore.external({ engine: DatabaseEngine.MYSQL, host: 'mariadb.data.svc', sslMode: 'required' }),
    server: { publicHosts: ['54.180.12.34'] },
  },
  'single sign-on behind a Gateway API route, ClusterIP': {
    credentials: Credentials.fromValues({ ...TEST_VALUES, ssoClientSecret: 'provider-client-secret', ssoCookieSecret: '0123456789abcdef0123456789abcdef' }),
    sso: { issuerUrl: 'https://login.example.com/realms/ml', clientId: 'mlflow', redirectUrl: 'https://mlflow.example.com/oauth2/callback', allowedGroups: ['ml-team'] },
    httpRoute: { gatewayName: 'public', gatewayNamespace: 'gateways', hostnames: ['mlflow.example.com'] },
    server: { exposure: ServiceExposure.CLUSTER_IP },
  },
  'credentials with an S3 endpoint': {
    credentials: Credentials.fromValues({ ...TEST_VALUES, s3EndpointUrl: 'http://ceph-rgw.storage.svc:7480', awsRegion: 'eu-west-1' }),
  },
};
