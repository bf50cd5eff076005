import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { defaultImage, partLabels, partPods, serviceHost, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { DefaultImages } from '../kit/images';
import { imageVersion, PartLabels } from '../kit/labels';
import { addPodSpecFields, podMetadata } from '../kit/pods';
import { resources } from '../kit/resources';
import { restrictedContainer, restrictedPod } from '../kit/security';
import { checkInteger, checkSeconds } from '../kit/settings';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { BackendStoreConnection } from '../stores/backend-store';
import { checkHostPatterns, hostsPart } from './allowed-hosts';
import { authPart } from './auth';
import { ServerAvailability } from './availability';
import { extrasPart } from './extras';
import { gatewayEnabled, gatewayPart } from './gateway';
import { jobsEnabled, jobsPart } from './jobs';
import { metricsPart } from './metrics';
import { launcherProgram, migrationProgram } from './programs';
import { ArtifactServing, ServiceExposure, TrackingServerOptions } from './server-options';
import { merged, ServerPart } from './server-part';
import { PROXY_PORT, SingleSignOnOptions, ssoPart } from './single-sign-on';
import { telemetryEnv } from './telemetry';
import { workspacesPart } from './workspaces';

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

/** The server's options, checked and with their defaults, before any object is made. */
interface ServerSettings {
  readonly image: string;
  readonly replicas: number;
  readonly workers: number;
  readonly jobs: boolean;
  readonly gateway: boolean;
  readonly exposure: ServiceExposure;
  readonly nodePort?: number;
  readonly waitSeconds: number;
  readonly proxied: boolean;
}

function resolve(props: TrackingServerProps): ServerSettings {
  const replicas = checkInteger('server.replicas', props.replicas ?? 2);
  if (props.replicas !== undefined && props.autoscaling !== undefined) {
    throw new ConfigError('server.replicas and server.autoscaling conflict: with autoscaling, set server.autoscaling.minReplicas instead', ['server.replicas', 'server.autoscaling']);
  }
  const workers = checkInteger('server.workers', props.workers ?? 2);
  const jobs = jobsEnabled(props.jobs, replicas, props.autoscaling !== undefined);
  const gateway = gatewayEnabled(props.gateway, props.hasKekPassphrase);
  const exposure = props.exposure ?? ServiceExposure.NODE_PORT;
  if (!Object.values(ServiceExposure).includes(exposure)) {
    throw new ConfigError(`server.exposure must be one of ${Object.values(ServiceExposure).join(', ')}; got ${JSON.stringify(exposure)}`, 'server.exposure');
  }
  if (exposure === ServiceExposure.CLUSTER_IP && props.nodePort !== undefined) {
    throw new ConfigError('server.nodePort and server.exposure ClusterIP conflict: a ClusterIP Service has no node port', ['server.nodePort', 'server.exposure']);
  }
  const nodePort = exposure === ServiceExposure.NODE_PORT ? checkInteger('server.nodePort', props.nodePort ?? 30003) : undefined;
  const waitSeconds = checkSeconds('server.databaseWaitTimeout', props.databaseWaitTimeout ?? Duration.minutes(5));
  const proxied = (props.artifactServing ?? ArtifactServing.PROXIED) === ArtifactServing.PROXIED;
  return { image: props.image ?? defaultImage(props.context, DefaultImages.MLFLOW), replicas, workers, jobs, gateway, exposure, nodePort, waitSeconds, proxied };
}

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
  /** The server's Deployment. */
  public readonly deployment: kplus.Deployment;
  /** The MLflow image the server runs. */
  public readonly image: string;
  /** Environment every MLflow process of the stack shares (telemetry). */
  public readonly commonEnv: Record<string, kplus.EnvValue>;

  public constructor(scope: Construct, id: string, props: TrackingServerProps) {
    super(scope, id);
    const { context } = props;
    const settings = resolve(props);
    const sso = props.singleSignOn;
    checkHostPatterns(props);
    this.image = settings.image;
    this.nodePort = settings.nodePort;
    this.podPort = sso ? PROXY_PORT : PORT;
    this.commonEnv = telemetryEnv(props.telemetry);
    this.labels = partLabels(context, 'mlflow', 'tracking-server', imageVersion(this.image));
    this.serviceName = context.instance;
    this.trackingUri = `http://${serviceHost(context, this.serviceName)}:${PORT}`;
    const metadata = { name: this.serviceName, namespace: context.namespace, labels: this.labels.all };
    const jobs = jobsPart(settings.jobs);
    const pods = partPods(context, props.pods, 'server.pods');
    const stackParts = serverParts(this, props, settings, jobs, this.commonEnv);
    const parts = [...stackParts, extrasPart(this, props, stackParts)];
    // Behind the single sign-on proxy, MLflow takes connections from inside the pod only.
    const serverArgs = [
      'server', '--host', sso ? '127.0.0.1' : '0.0.0.0', '--port', String(PORT), '--workers', String(settings.workers),
      settings.proxied ? '--serve-artifacts' : '--no-serve-artifacts', ...merged(parts, 'args'),
    ];

    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata,
      podMetadata: podMetadata(this.labels, pods),
      select: false,
      // An autoscaler owns the count; a count in the manifest would reset it on every apply.
      replicas: props.autoscaling ? undefined : settings.replicas,
      strategy: jobs.strategy,
      securityContext: restrictedPod(MLFLOW_UID),
      automountServiceAccountToken: false,
      initContainers: [migrateContainer(this.image, parts)],
      containers: [mlflowContainer(this.image, serverArgs, parts, { podPort: this.podPort, sso: sso !== undefined, resources: props.resources }), ...merged(parts, 'sidecars')],
    });
    deployment.select(kplus.LabelSelector.of({ labels: this.labels.selector }));
    // A Service named like the CLI's env prefix would inject MLFLOW_PORT=tcp://..., which `mlflow server` reads as --port.
    ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/enableServiceLinks', false));
    addPodSpecFields(ApiObject.of(deployment), '/spec/template', pods);
    this.deployment = deployment;

    const availability = new ServerAvailability(this, 'availability', { context, deployment, labels: this.labels, replicas: settings.replicas, autoscaling: props.autoscaling });
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
      type: settings.exposure === ServiceExposure.NODE_PORT ? kplus.ServiceType.NODE_PORT : kplus.ServiceType.CLUSTER_IP,
      ports: [{ name: 'http', port: PORT, targetPort: this.podPort, nodePort: this.nodePort }],
    });
    for (const [key, value] of Object.entries(this.labels.selector)) this.service.selectLabel(key, value);
  }
}

/** Each concern's contribution to the pod; their order is the order of env, args and mounts in it. */
function serverParts(scope: Construct, props: TrackingServerProps, settings: ServerSettings, jobs: ServerPart, commonEnv: Record<string, kplus.EnvValue>): ServerPart[] {
  const { secret } = props.context;
  const tmp = kplus.Volume.fromEmptyDir(scope, 'tmp', 'tmp');
  const sso = props.singleSignOn;
  return [
    {
      env: {
        MLFLOW_BACKEND_STORE_URI: secret.envValue(SecretKeys.MLFLOW_BACKEND_STORE_URI),
        [settings.proxied ? 'MLFLOW_ARTIFACTS_DESTINATION' : 'MLFLOW_DEFAULT_ARTIFACT_ROOT']: secret.envValue(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
        ...props.artifactStore.clientEnv(secret),
      },
      migrateEnv: {
        MLFLOW_BACKEND_STORE_URI: secret.envValue(SecretKeys.MLFLOW_BACKEND_STORE_URI),
        MLFLOW_DB_WAIT_SECONDS: kplus.EnvValue.fromValue(String(settings.waitSeconds)),
        HOME: kplus.EnvValue.fromValue('/tmp'),
      },
      mounts: [{ path: '/tmp', volume: tmp }],
      migrateMounts: [{ path: '/tmp', volume: tmp }],
    },
    hostsPart({ ...props, serviceName: props.context.instance, namespace: props.context.namespace, clusterDomain: props.context.clusterDomain }),
    {
      env: {
        // Presigned multipart transfers would send clients straight to the S3 endpoint, which is
        // in-cluster (MinIO) or credentialed: proxied artifacts must stay proxied.
        MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD: kplus.EnvValue.fromValue('false'),
        MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD: kplus.EnvValue.fromValue('false'),
        HOME: kplus.EnvValue.fromValue('/tmp'),
        PYTHONUNBUFFERED: kplus.EnvValue.fromValue('1'),
        MLFLOW_FENCE_IDLE: kplus.EnvValue.fromValue('true'),
      },
    },
    jobs,
    workspacesPart(props.workspaces),
    gatewayPart(settings.gateway, secret),
    { env: commonEnv, migrateEnv: commonEnv },
    ...(props.auth ? [authPart(scope, secret)] : []),
    ...(props.metrics ? [metricsPart(scope, settings.image)] : []),
    ...(sso ? [ssoPart(sso, secret, PORT, defaultImage(props.context, DefaultImages.OAUTH2_PROXY))] : []),
  ];
}

/** The init container that migrates the schema (or waits for it) before the server starts. */
function migrateContainer(image: string, parts: ServerPart[]): kplus.ContainerProps {
  return {
    name: 'migrate',
    image,
    imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
    command: ['python', '-c', migrationProgram()],
    envVariables: merged(parts, 'migrateEnv'),
    securityContext: restrictedContainer(MLFLOW_UID),
    resources: resources(100, 256, 1000, 1024),
    volumeMounts: merged(parts, 'migrateMounts'),
  };
}

/** The `mlflow server` container, under the writer-fence launcher. */
function mlflowContainer(image: string, args: string[], parts: ServerPart[], options: { podPort: number; sso: boolean; resources?: kplus.ContainerResources }): kplus.ContainerProps {
  const probe = (periodSeconds: number, failureThreshold: number) =>
    kplus.Probe.fromHttpGet('/health', { port: options.podPort, periodSeconds: Duration.seconds(periodSeconds), failureThreshold, timeoutSeconds: Duration.seconds(5) });
  return {
    name: 'mlflow',
    image,
    imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
    command: ['python', '-c', launcherProgram()],
    args: ['mlflow', ...args],
    ports: [{ name: options.sso ? 'mlflow' : 'http', number: PORT }],
    envVariables: merged(parts, 'env'),
    securityContext: restrictedContainer(MLFLOW_UID),
    resources: options.resources ?? resources(250, 1024, 2000, 2048),
    // The Service stops sending new requests while the pod is still serving the last ones.
    lifecycle: { preStop: kplus.Handler.fromCommand(['sleep', '5']) },
    // The schema is migrated by the init container, so start-up is seconds; the budget covers slow nodes.
    // With single sign-on MLflow listens on loopback: its /health is probed through the proxy, which leaves it open.
    startup: probe(5, 60),
    readiness: probe(10, 3),
    liveness: probe(20, 6),
    volumeMounts: merged(parts, 'mounts'),
  };
}
