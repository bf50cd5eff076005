import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { partLabels, serviceHost, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { DefaultImages } from '../kit/images';
import { imageVersion, PartLabels } from '../kit/labels';
import { resources } from '../kit/resources';
import { restrictedContainer, restrictedPod } from '../kit/security';
import { checkIntegerInRange } from '../kit/validate';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { BackendStoreConnection } from '../stores/backend-store';
import { s3Env } from '../stores/s3-env';
import { allowedHosts, corsOrigins } from './allowed-hosts';
import { AutoscalingOptions, ServerAvailability } from './availability';
import { launcherProgram, migrationProgram } from './programs';
import { PROXY_PORT, SingleSignOnOptions, singleSignOnProxy } from './single-sign-on';
import { isEnabled } from '../kit/feature';

/** How clients read and write artifacts. */
export enum ArtifactServing {
  /** Through the tracking server (`--serve-artifacts`): clients need only the tracking URL; S3 credentials stay on the server. */
  PROXIED = 'proxied',
  /** Straight to S3 (`--no-serve-artifacts`): every client needs S3 credentials and a reachable S3 endpoint. */
  DIRECT = 'direct',
}

/** How the Service exposes the server. */
export enum ServiceExposure {
  /** On every node's port `nodePort` (and inside the cluster). */
  NODE_PORT = 'NodePort',
  /** Inside the cluster only: for installations reached through an Ingress or an HTTPRoute. */
  CLUSTER_IP = 'ClusterIP',
}

/** Options for the MLflow tracking server. */
export interface TrackingServerOptions {
  /**
   * MLflow image; it must contain mlflow 3.x, psycopg2 and boto3.
   * @default 'ghcr.io/mlflow/mlflow:v3.18.0-full'
   */
  readonly image?: string;
  /**
   * Number of server pods. Schema migrations are serialized, so any number is safe.
   * @default 2
   */
  readonly replicas?: number;
  /**
   * uvicorn worker processes per pod (`--workers`); each holds its own database pool and memory.
   * @default 2
   */
  readonly workers?: number;
  /**
   * NodePort of the UI and API, 30000-32767, unique in the cluster.
   * @default 30003
   */
  readonly nodePort?: number;
  /**
   * How the Service exposes the server. ClusterIP suits an installation reached through an Ingress
   * or an HTTPRoute, so it is not also open on every node.
   * @default ServiceExposure.NODE_PORT
   */
  readonly exposure?: ServiceExposure;
  /**
   * CPU and memory of the server container.
   * @default - requests 250m CPU / 1Gi, limits 2 CPU / 2Gi
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * Whether artifacts go through the server or straight to S3.
   * @default ArtifactServing.PROXIED
   */
  readonly artifactServing?: ArtifactServing;
  /**
   * Host names and IP addresses clients reach the server by from outside: a public node IP
   * (`'54.180.12.34'`), a DNS name (`'mlflow.example.com'`). Each is accepted on any port, and its
   * origins are allowed for the UI. Loopback, private addresses and the Service's in-cluster names
   * are always accepted; anything else gets MLflow's 403 "Invalid Host header".
   * @default []
   */
  readonly publicHosts?: string[];
  /**
   * More Host header patterns to accept, as MLflow reads them (fnmatch, port included, e.g.
   * `'*.corp.example.com:*'`).
   * @default []
   */
  readonly allowedHosts?: string[];
  /**
   * More browser origins allowed to call the API, e.g. `'https://notebooks.example.com'`.
   * The origins of every allowed host are always accepted.
   * @default []
   */
  readonly corsAllowedOrigins?: string[];
  /**
   * How long the migration step waits for PostgreSQL before the pod fails.
   * @default Duration.minutes(5)
   */
  readonly databaseWaitTimeout?: Duration;
  /**
   * Scale the server with a HorizontalPodAutoscaler on CPU; `replicas` is then left to it.
   * @default - a fixed number of replicas
   */
  readonly autoscaling?: AutoscalingOptions;
  /**
   * MLflow's AI gateway, whose stored provider keys are encrypted with `MLFLOW_CRYPTO_KEK_PASSPHRASE`
   * from the Secret (MLflow's shared development passphrase is never used).
   * @default - on when the credentials carry MLFLOW_CRYPTO_KEK_PASSPHRASE, else off (MLFLOW_ENABLE_AI_GATEWAY=false)
   */
  readonly gateway?: GatewayOptions;
  /**
   * MLflow's background jobs (server-side scorers, prompt optimization). Their queue lives in each
   * pod, and a starting pod re-runs the jobs other pods are running, so they need exactly one
   * replica, replaced without overlap (the Deployment then uses the Recreate strategy).
   * @default - off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false)
   */
  readonly jobs?: JobsOptions;
  /**
   * Workspaces (`MLFLOW_ENABLE_WORKSPACES`): teams sharing one server see only their own
   * experiments and models; clients pick one with MLFLOW_WORKSPACE. Use with basic auth, or anyone
   * can create and enter any workspace.
   * @default - off
   */
  readonly workspaces?: WorkspacesOptions;
  /**
   * MLflow's usage telemetry from the server and the stack's jobs.
   * @default - off (MLFLOW_DISABLE_TELEMETRY=true): a cluster service should not call out unasked
   */
  readonly telemetry?: TelemetryOptions;
}

/** MLflow's AI gateway. */
export interface GatewayOptions {
  /**
   * On or off. On needs MLFLOW_CRYPTO_KEK_PASSPHRASE in the credentials (or the existing Secret).
   * @default - on when the credentials carry MLFLOW_CRYPTO_KEK_PASSPHRASE
   */
  readonly enabled?: boolean;
}

/** MLflow's background job execution. */
export interface JobsOptions {
  /**
   * On or off; on needs `replicas: 1` and no autoscaling.
   * @default false
   */
  readonly enabled?: boolean;
}

/** MLflow workspaces. */
export interface WorkspacesOptions {
  /**
   * On or off.
   * @default false
   */
  readonly enabled?: boolean;
}

/** MLflow's usage telemetry. */
export interface TelemetryOptions {
  /**
   * On (MLflow sends usage data to its telemetry service) or off.
   * @default false
   */
  readonly enabled?: boolean;
}

export interface TrackingServerProps extends TrackingServerOptions {
  readonly context: StackContext;
  readonly backendStore: BackendStoreConnection;
  readonly artifactStore: ArtifactStoreConnection;
  /** Run MLflow's basic auth; the Secret then holds the auth keys (see `SecretKeys`). */
  readonly auth: boolean;
  /** Serve Prometheus metrics on `/metrics`. */
  readonly metrics: boolean;
  /** Host names the stack itself routes to the server (an Ingress host); added to the allowed hosts. */
  readonly routedHosts: string[];
  /** Whether the credentials carry a key-encryption passphrase for the AI gateway; undefined with an existing Secret. */
  readonly hasKekPassphrase?: boolean;
  /** Single sign-on: an oauth2-proxy in front of MLflow, which then listens on loopback only. */
  readonly singleSignOn?: SingleSignOnOptions;
}

const MLFLOW_UID = 1000;
const PORT = 5000;
const AUTH_DIR = '/etc/mlflow-auth';
/** Where `--expose-prometheus` keeps its multi-process files: a writable emptyDir. */
const METRICS_DIR = '/mlflow-metrics';

/** The MLflow tracking server: a Deployment whose pods migrate the schema first, and a NodePort Service. */
export class TrackingServer extends Construct {
  /** Name of the Service (and Deployment). */
  public readonly serviceName: string;
  /** The Service's port inside the cluster. */
  public readonly port = PORT;
  /** The pod port the Service sends traffic to: MLflow's, or the single sign-on proxy's. */
  public readonly podPort: number;
  /** The NodePort of the UI and API; undefined with ClusterIP exposure. */
  public readonly nodePort?: number;
  /** The tracking URI for clients inside the cluster. */
  public readonly trackingUri: string;
  /** The server's labels; the selector picks its pods. */
  public readonly labels: PartLabels;
  /** The NodePort Service. */
  public readonly service: kplus.Service;
  /** The MLflow image the server runs. */
  public readonly image: string;
  /** Environment every MLflow process of the stack shares (telemetry). */
  public readonly commonEnv: Record<string, kplus.EnvValue>;

  public constructor(scope: Construct, id: string, props: TrackingServerProps) {
    super(scope, id);
    const { context } = props;
    const { secret } = context;
    this.image = props.image ?? DefaultImages.MLFLOW;
    const replicas = checkIntegerInRange(props.replicas ?? 2, 'server.replicas', 1, 100);
    if (props.replicas !== undefined && props.autoscaling !== undefined) {
      throw new ConfigError('server.replicas and server.autoscaling conflict: with autoscaling, set server.autoscaling.minReplicas instead');
    }
    const workers = checkIntegerInRange(props.workers ?? 2, 'server.workers', 1, 64);
    const jobs = isEnabled(props.jobs, false);
    if (jobs && (replicas !== 1 || props.autoscaling)) {
      throw new ConfigError('server.jobs needs server.replicas: 1 and no server.autoscaling: MLflow keeps the job queue in each pod, and a starting pod runs again the jobs other pods are running');
    }
    const gateway = isEnabled(props.gateway, props.hasKekPassphrase ?? false);
    if (gateway && props.hasKekPassphrase === false) {
      throw new ConfigError('server.gateway is on but the credentials have no MLFLOW_CRYPTO_KEK_PASSPHRASE: the AI gateway would encrypt provider keys with MLflow\'s public development passphrase; add one to .env (e.g. openssl rand -base64 32) and keep it');
    }
    this.commonEnv = isEnabled(props.telemetry, false) ? {} : { MLFLOW_DISABLE_TELEMETRY: kplus.EnvValue.fromValue('true') };
    const gatewayEnv: Record<string, kplus.EnvValue> = gateway
      ? {
        MLFLOW_CRYPTO_KEK_PASSPHRASE: secret.envValue(SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE),
        MLFLOW_CRYPTO_KEK_VERSION: secret.envValue(SecretKeys.MLFLOW_CRYPTO_KEK_VERSION, { optional: true }),
      }
      : { MLFLOW_ENABLE_AI_GATEWAY: kplus.EnvValue.fromValue('false') };
    const exposure = props.exposure ?? ServiceExposure.NODE_PORT;
    if (!Object.values(ServiceExposure).includes(exposure)) {
      throw new ConfigError(`server.exposure must be one of ${Object.values(ServiceExposure).join(', ')}; got ${JSON.stringify(exposure)}`);
    }
    if (exposure === ServiceExposure.CLUSTER_IP && props.nodePort !== undefined) {
      throw new ConfigError('server.nodePort and server.exposure ClusterIP conflict: a ClusterIP Service has no node port');
    }
    this.nodePort = exposure === ServiceExposure.NODE_PORT ? checkIntegerInRange(props.nodePort ?? 30003, 'server.nodePort', 30000, 32767) : undefined;
    const sso = props.singleSignOn;
    this.podPort = sso ? PROXY_PORT : PORT;
    const waitSeconds = (props.databaseWaitTimeout ?? Duration.minutes(5)).toSeconds();
    checkIntegerInRange(waitSeconds, 'server.databaseWaitTimeout (seconds)', 1, 3600);
    for (const pattern of [...(props.allowedHosts ?? []), ...(props.corsAllowedOrigins ?? [])]) {
      if (pattern.trim() === '' || /[,\s]/.test(pattern)) {
        throw new ConfigError(`server.allowedHosts / server.corsAllowedOrigins entries must be non-empty and contain no commas or spaces; got ${JSON.stringify(pattern)}`);
      }
    }
    this.labels = partLabels(context, 'mlflow', 'tracking-server', imageVersion(this.image));
    this.serviceName = context.instance;
    this.trackingUri = `http://${serviceHost(context, this.serviceName)}:${PORT}`;
    const metadata = { name: this.serviceName, namespace: context.namespace, labels: this.labels.all };
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');
    const publicHosts = (props.publicHosts ?? []).map((h) => checkPublicHost(h));
    const hosts = allowedHosts(this.serviceName, context.namespace, context.clusterDomain, [
      ...[...props.routedHosts, ...publicHosts].flatMap((h) => [h, `${h}:*`]),
      ...(props.allowedHosts ?? []),
    ]);
    const proxied = (props.artifactServing ?? ArtifactServing.PROXIED) === ArtifactServing.PROXIED;
    const authVolume = props.auth
      ? kplus.Volume.fromSecret(this, 'auth-config', secret, { name: 'auth-config', items: { [SecretKeys.AUTH_CONFIG_FILE]: { path: SecretKeys.AUTH_CONFIG_FILE } } })
      : undefined;
    const authEnv: Record<string, kplus.EnvValue> = authVolume ? { MLFLOW_AUTH_CONFIG_PATH: kplus.EnvValue.fromValue(`${AUTH_DIR}/${SecretKeys.AUTH_CONFIG_FILE}`) } : {};
    const authMounts = authVolume ? [{ path: AUTH_DIR, volume: authVolume, readOnly: true }] : [];
    const metricsVolume = props.metrics ? kplus.Volume.fromEmptyDir(this, 'metrics', 'metrics') : undefined;
    // Behind the single sign-on proxy, MLflow takes connections from inside the pod only.
    const serverArgs = ['server', '--host', sso ? '127.0.0.1' : '0.0.0.0', '--port', String(PORT), '--workers', String(workers), proxied ? '--serve-artifacts' : '--no-serve-artifacts'];
    if (props.auth) serverArgs.push('--app-name', 'basic-auth');
    if (metricsVolume) serverArgs.push('--expose-prometheus', METRICS_DIR);
    const adminCredentials: Record<string, kplus.EnvValue> = props.auth ? {
      MLFLOW_TRACKING_USERNAME: secret.envValue(SecretKeys.MLFLOW_TRACKING_USERNAME),
      MLFLOW_TRACKING_PASSWORD: secret.envValue(SecretKeys.MLFLOW_TRACKING_PASSWORD),
    } : {};

    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata,
      podMetadata: { labels: this.labels.all },
      select: false,
      // An autoscaler owns the count; a count in the manifest would reset it on every apply.
      replicas: props.autoscaling ? undefined : replicas,
      // A new pod starts before an old one stops; schema upgrades stop the old ones through the fence (programs.ts).
      strategy: jobs
        ? kplus.DeploymentStrategy.recreate()
        : kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
      securityContext: restrictedPod(MLFLOW_UID),
      automountServiceAccountToken: false,
      initContainers: [{
        name: 'migrate',
        image: this.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['python', '-c', migrationProgram()],
        envVariables: {
          MLFLOW_BACKEND_STORE_URI: secret.envValue(SecretKeys.MLFLOW_BACKEND_STORE_URI),
          MLFLOW_DB_WAIT_SECONDS: kplus.EnvValue.fromValue(String(waitSeconds)),
          HOME: kplus.EnvValue.fromValue('/tmp'),
          ...this.commonEnv,
          ...authEnv,
          ...adminCredentials,
        },
        securityContext: restrictedContainer(MLFLOW_UID),
        resources: resources(100, 256, 1000, 1024),
        volumeMounts: [{ path: '/tmp', volume: tmp }, ...authMounts],
      }],
      containers: [{
        name: 'mlflow',
        image: this.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['python', '-c', launcherProgram()],
        args: ['mlflow', ...serverArgs],
        ports: [{ name: sso ? 'mlflow' : 'http', number: PORT }],
        envVariables: {
          MLFLOW_BACKEND_STORE_URI: secret.envValue(SecretKeys.MLFLOW_BACKEND_STORE_URI),
          [proxied ? 'MLFLOW_ARTIFACTS_DESTINATION' : 'MLFLOW_DEFAULT_ARTIFACT_ROOT']: secret.envValue(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
          ...s3Env(secret, props.artifactStore),
          MLFLOW_SERVER_ALLOWED_HOSTS: kplus.EnvValue.fromValue(hosts.join(',')),
          MLFLOW_SERVER_CORS_ALLOWED_ORIGINS: kplus.EnvValue.fromValue(corsOrigins(hosts, props.corsAllowedOrigins ?? []).join(',')),
          // Presigned multipart transfers would send clients straight to the S3 endpoint, which is
          // in-cluster (MinIO) or credentialed: proxied artifacts must stay proxied.
          MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD: kplus.EnvValue.fromValue('false'),
          MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD: kplus.EnvValue.fromValue('false'),
          HOME: kplus.EnvValue.fromValue('/tmp'),
          PYTHONUNBUFFERED: kplus.EnvValue.fromValue('1'),
          MLFLOW_FENCE_IDLE: kplus.EnvValue.fromValue('true'),
          MLFLOW_SERVER_ENABLE_JOB_EXECUTION: kplus.EnvValue.fromValue(String(jobs)),
          ...(isEnabled(props.workspaces, false) ? { MLFLOW_ENABLE_WORKSPACES: kplus.EnvValue.fromValue('true') } : {}),
          ...gatewayEnv,
          ...this.commonEnv,
          ...authEnv,
          ...(props.auth ? { MLFLOW_FLASK_SERVER_SECRET_KEY: secret.envValue(SecretKeys.MLFLOW_FLASK_SERVER_SECRET_KEY) } : {}),
        },
        securityContext: restrictedContainer(MLFLOW_UID),
        resources: props.resources ?? resources(250, 1024, 2000, 2048),
        // The Service stops sending new requests while the pod is still serving the last ones.
        lifecycle: { preStop: kplus.Handler.fromCommand(['sleep', '5']) },
        // The schema is migrated by the init container, so start-up is seconds; the budget covers slow nodes.
        // With single sign-on MLflow listens on loopback: its /health is probed through the proxy, which leaves it open.
        startup: kplus.Probe.fromHttpGet('/health', { port: this.podPort, periodSeconds: Duration.seconds(5), failureThreshold: 60, timeoutSeconds: Duration.seconds(5) }),
        readiness: kplus.Probe.fromHttpGet('/health', { port: this.podPort, periodSeconds: Duration.seconds(10), failureThreshold: 3, timeoutSeconds: Duration.seconds(5) }),
        liveness: kplus.Probe.fromHttpGet('/health', { port: this.podPort, periodSeconds: Duration.seconds(20), failureThreshold: 6, timeoutSeconds: Duration.seconds(5) }),
        volumeMounts: [{ path: '/tmp', volume: tmp }, ...authMounts, ...(metricsVolume ? [{ path: METRICS_DIR, volume: metricsVolume }] : [])],
      }, ...(sso ? [singleSignOnProxy(sso, secret, PORT)] : [])],
    });
    deployment.select(kplus.LabelSelector.of({ labels: this.labels.selector }));
    // A Service named like the CLI's env prefix would inject MLFLOW_PORT=tcp://..., which `mlflow server` reads as --port.
    ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/enableServiceLinks', false));

    const availability = new ServerAvailability(this, 'availability', { context, deployment, labels: this.labels, replicas, autoscaling: props.autoscaling });
    if (availability.minReplicas >= 2) {
      ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/topologySpreadConstraints', [{
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: this.labels.selector },
      }]));
    }

    this.service = new kplus.Service(this, 'service', {
      metadata,
      type: exposure === ServiceExposure.NODE_PORT ? kplus.ServiceType.NODE_PORT : kplus.ServiceType.CLUSTER_IP,
      ports: [{ name: 'http', port: PORT, targetPort: this.podPort, nodePort: this.nodePort }],
    });
    for (const [key, value] of Object.entries(this.labels.selector)) this.service.selectLabel(key, value);
  }
}

const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

/** A host name or IP address as a Host header carries it, without scheme, port or wildcard. */
function checkPublicHost(host: string): string {
  if (!HOST_NAME.test(host) && !IPV6.test(host)) {
    throw new ConfigError(`server.publicHosts entries must be a host name or IP address without scheme, port or wildcard (e.g. 54.180.12.34, mlflow.example.com, [2001:db8::1]); got ${JSON.stringify(host)}`);
  }
  return host.toLowerCase();
}
