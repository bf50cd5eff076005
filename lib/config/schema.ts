/**
 * The JSON Schema of the app's settings file (`mlflow.yaml`): every key the file may hold, its type
 * and what values are allowed. Keys mirror the props of `MlflowStack`, so what a library user writes
 * in TypeScript a platform engineer writes in YAML.
 */

const string = { type: 'string', minLength: 1 };
const bool = { type: 'boolean' };
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });
const strings = { type: 'array', items: string };
/** `250m`, `2`, `0.5` */
const cpu = { type: 'string', pattern: '^([0-9]+m|[0-9]+(\\.[0-9]+)?)$', description: 'CPU such as 250m or 2' };
/** `512Mi`, `10Gi`, `1Ti` */
const size = { type: 'string', pattern: '^[0-9]+(Mi|Gi|Ti)$', description: 'a size such as 512Mi, 10Gi or 1Ti' };
/** `30s`, `5m`, `2h`, `14d` */
const duration = { type: 'string', pattern: '^[0-9]+(s|m|h|d)$', description: 'a duration such as 30s, 5m, 2h or 14d' };

const object = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required });
const enabled = { enabled: bool };

const resources = object({
  requests: object({ cpu, memory: size }),
  limits: object({ cpu, memory: size }),
});
const inClusterStore = object({ image: string, storage: size, storageClassName: string, resources });

export const CONFIG_SCHEMA = object({
  name: string,
  namespace: string,
  createNamespace: bool,
  clusterDomain: string,
  credentials: object({ existingSecret: string }),
  server: object({
    image: string,
    replicas: int(1, 100),
    workers: int(1, 64),
    nodePort: int(30000, 32767),
    exposure: { enum: ['NodePort', 'ClusterIP'] },
    publicHosts: strings,
    allowedHosts: strings,
    corsAllowedOrigins: strings,
    artifactServing: { enum: ['proxied', 'direct'] },
    databaseWaitTimeout: duration,
    resources,
    autoscaling: object({ minReplicas: int(1, 100), maxReplicas: int(1, 100), cpuUtilizationPercent: int(1, 100) }, ['maxReplicas']),
    gateway: object(enabled),
    jobs: object(enabled),
    workspaces: object(enabled),
    telemetry: object(enabled),
  }),
  backendStore: {
    ...object({
      postgres: inClusterStore,
      external: object({ engine: { enum: ['postgresql', 'mysql'] }, host: string, port: int(1, 65535), sslMode: string }, ['host']),
    }),
    minProperties: 1,
    maxProperties: 1,
  },
  artifactStore: {
    ...object({
      minio: inClusterStore,
      seaweedfs: inClusterStore,
      s3: object({ endpoint: string, ignoreTls: bool }),
    }),
    minProperties: 1,
    maxProperties: 1,
  },
  bucketJob: object({ image: string, waitTimeout: duration }),
  auth: object({ ...enabled, defaultPermission: { enum: ['READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'] }, credentialCacheTtl: duration }),
  networkPolicies: object(enabled),
  ingress: object({ ...enabled, host: string, path: string, tlsSecretName: string, className: string, maxBodySize: size }, ['host']),
  httpRoute: object({ ...enabled, gatewayName: string, gatewayNamespace: string, hostnames: strings, path: string }, ['gatewayName', 'hostnames']),
  sso: object({ ...enabled, issuerUrl: string, clientId: string, redirectUrl: string, allowedGroups: strings, emailDomains: strings, extraAudiences: strings, sessionLifetime: duration, image: string }, ['issuerUrl', 'clientId', 'redirectUrl']),
  metrics: object({ ...enabled, serviceMonitor: bool, interval: duration }),
  garbageCollection: object({ ...enabled, schedule: string, olderThan: duration }),
  backup: object({ ...enabled, schedule: string, retention: duration, bucket: string, prefix: string, image: string, clientImage: string }),
});
