import { createHash } from 'crypto';
import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStore } from './artifact-store';
import { BackendStore } from './backend-store';
import { BucketJob, BucketJobOptions } from './bucket-job';
import { Credentials } from './credentials';
import { CredentialsSecret } from './credentials-secret';
import { ConfigError } from './errors';
import { AuthOptions } from './auth';
import { BackupOptions, DatabaseBackup } from './backup-cronjob';
import { GarbageCollection, GarbageCollectionOptions } from './gc-cronjob';
import { checkIngressHost, IngressOptions, ServerIngress } from './ingress';
import { imageVersion, LIBRARY_VERSION, PartLabels, partLabels } from './labels';
import { NetworkPolicies } from './network-policies';
import { MetricsOptions, ServerMonitor } from './service-monitor';
import { SecretKeys } from './secret-keys';
import { StoreContext } from './store-context';
import { TrackingServer, TrackingServerOptions } from './tracking-server';
import { checkDnsLabel, checkDnsSubdomain } from './validate';

/** Everything an MLflow installation is made of. */
export interface MlflowStackProps {
  /** Credentials for PostgreSQL and S3: from a `.env` file, from values, or an existing Secret. */
  readonly credentials: Credentials;
  /**
   * Name of this installation: the Service name, the prefix of every other object name and the
   * `app.kubernetes.io/instance` label. A DNS label of at most 40 characters.
   * @default 'mlflow'
   */
  readonly name?: string;
  /**
   * Namespace of every object.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * Whether to emit the Namespace object (first in the output, so one `kubectl apply` creates it).
   * Then `kubectl delete -f` of the output deletes the namespace, and with it the data volumes,
   * which otherwise outlive an uninstall: leave it off where data matters and create the
   * namespace once, outside the stack.
   * @default false
   */
  readonly createNamespace?: boolean;
  /**
   * The cluster's DNS domain, used in in-cluster host names.
   * @default 'cluster.local'
   */
  readonly clusterDomain?: string;
  /**
   * Where run metadata lives.
   * @default BackendStore.postgres()
   */
  readonly backendStore?: BackendStore;
  /**
   * Where artifacts live.
   * @default - ArtifactStore.s3({ endpoint }) when the credentials name an S3 endpoint, else ArtifactStore.minio()
   */
  readonly artifactStore?: ArtifactStore;
  /**
   * The tracking server.
   * @default - see TrackingServerOptions
   */
  readonly server?: TrackingServerOptions;
  /**
   * The Job that creates the bucket.
   * @default - see BucketJobOptions
   */
  readonly bucketJob?: BucketJobOptions;
  /**
   * MLflow's basic authentication.
   * @default - on when the credentials carry an admin password (MLFLOW_TRACKING_PASSWORD)
   */
  readonly auth?: AuthOptions;
  /**
   * NetworkPolicies that let each pod talk only to what it needs (DNS always allowed).
   * Needs a network plugin that enforces them.
   * @default true
   */
  readonly networkPolicies?: boolean;
  /**
   * An Ingress in front of the server; its host is added to the allowed hosts and origins.
   * @default - none: the NodePort only
   */
  readonly ingress?: IngressOptions;
  /**
   * Prometheus metrics on `/metrics` (and a ServiceMonitor).
   * @default - off
   */
  readonly metrics?: MetricsOptions;
  /**
   * A CronJob that permanently removes runs deleted long enough ago (`mlflow gc`).
   * @default - off
   */
  readonly garbageCollection?: GarbageCollectionOptions;
  /**
   * Scheduled database backups into the artifact bucket.
   * @default - on with the in-cluster PostgreSQL (see BackupOptions)
   */
  readonly backup?: BackupOptions;
}

/**
 * MLflow on Kubernetes: the tracking server, its PostgreSQL and MinIO (or external ones), the
 * credentials Secret and the bucket Job.
 */
export class MlflowStack extends Construct {
  /** Namespace of every object. */
  public readonly namespace: string;
  /** Name of the credentials Secret (created, or the existing one). */
  public readonly secretName: string;
  /** Name of the tracking server's Service. */
  public readonly serviceName: string;
  /** Tracking URI for clients inside the cluster. */
  public readonly trackingUri: string;
  /** NodePort of the UI and API: `http://<node-ip>:<nodePort>`. */
  public readonly nodePort: number;
  /** Name of the bucket Job (it changes with the Job's content). */
  public readonly bucketJobName: string;

  public constructor(scope: Construct, id: string, props: MlflowStackProps) {
    super(scope, id);
    const instance = checkDnsLabel(props.name ?? 'mlflow', 'name', 40);
    this.namespace = checkDnsLabel(props.namespace ?? 'default', 'namespace');
    const clusterDomain = checkDnsSubdomain(props.clusterDomain ?? 'cluster.local', 'clusterDomain');
    const { credentials } = props;
    const values = credentials.values;
    this.secretName = credentials.existingSecretName ?? `${instance}-credentials`;
    const context: StoreContext = { namespace: this.namespace, instance, secretName: this.secretName, clusterDomain };

    const artifactStore = props.artifactStore ?? (values?.s3EndpointUrl ? ArtifactStore.s3({ endpoint: values.s3EndpointUrl }) : ArtifactStore.minio());
    if (values?.s3EndpointUrl !== undefined && artifactStore.externalEndpoint !== values.s3EndpointUrl) {
      throw new ConfigError(
        `${credentials.source}: MLFLOW_S3_ENDPOINT_URL (${values.s3EndpointUrl}) conflicts with artifactStore ${artifactStore.externalEndpoint ? `endpoint ${artifactStore.externalEndpoint}` : '(in-cluster MinIO or AWS S3)'}; set the endpoint in one place`,
      );
    }

    if ((props.createNamespace ?? false) && SYSTEM_NAMESPACES.includes(this.namespace)) {
      throw new ConfigError(`createNamespace cannot manage the system namespace ${this.namespace} (kubectl delete would try to delete it); set namespace to your own or createNamespace to false`);
    }
    if (props.createNamespace ?? false) {
      new kplus.Namespace(this, 'namespace', { metadata: { name: this.namespace, labels: partLabels(instance, 'mlflow', 'namespace', LIBRARY_VERSION).all } });
    }
    const backend = (props.backendStore ?? BackendStore.postgres())._bind(this, context);
    const artifacts = artifactStore._bind(this, context);

    const auth = props.auth?.enabled ?? values?.adminPassword !== undefined;
    if (auth && values && values.adminPassword === undefined) {
      throw new ConfigError(`auth.enabled is true but ${credentials.source} has no ${SecretKeys.MLFLOW_TRACKING_PASSWORD} (the admin password, at least 12 characters)`);
    }
    let secret: kplus.ISecret;
    let settingsRevision: string | undefined;
    if (values) {
      if (artifacts.credentialsAreRootUser) checkMinioCredentials(values.awsAccessKeyId, values.awsSecretAccessKey, credentials.source);
      new CredentialsSecret(this, 'credentials', {
        context, values, backendStore: backend, artifactStore: artifacts, auth: auth ? props.auth ?? {} : undefined,
      });
      secret = kplus.Secret.fromSecretName(this, 'credentials-ref', this.secretName);
      settingsRevision = createHash('sha256').update(JSON.stringify([values.artifactRoot, artifacts.endpointUrl, values.awsRegion])).digest('hex');
    } else {
      secret = kplus.Secret.fromSecretName(this, 'credentials', this.secretName);
    }

    const bucketJob = new BucketJob(this, 'bucket', { ...props.bucketJob, context, secret, artifactStore: artifacts, settingsRevision });
    const ingressHost = props.ingress ? checkIngressHost(props.ingress.host) : undefined;
    const server = new TrackingServer(this, 'server', {
      ...props.server,
      context,
      secret,
      backendStore: backend,
      artifactStore: artifacts,
      auth,
      metrics: props.metrics !== undefined,
      publicHosts: ingressHost ? [ingressHost] : [],
    });
    const serverLabels = partLabels(instance, 'mlflow', 'tracking-server', imageVersion(server.image));
    if (props.ingress) {
      new ServerIngress(this, 'ingress', { ...props.ingress, context, labels: serverLabels, serviceName: server.serviceName, servicePort: server.port });
    }
    if (props.metrics && (props.metrics.serviceMonitor ?? true)) {
      new ServerMonitor(this, 'monitor', { context, labels: serverLabels, interval: props.metrics.interval ?? Duration.seconds(30), auth });
    }
    let gcLabels: PartLabels | undefined;
    if (props.garbageCollection) {
      gcLabels = partLabels(instance, 'mlflow', 'garbage-collection', imageVersion(server.image));
      new GarbageCollection(this, 'gc', {
        ...props.garbageCollection, context, secret, labels: gcLabels, image: server.image, trackingUri: server.trackingUri, artifactStore: artifacts, auth,
      });
    }
    let backupLabels: PartLabels | undefined;
    if (props.backup?.enabled ?? backend.podSelector !== undefined) {
      backupLabels = partLabels(instance, 'postgresql', 'backup', LIBRARY_VERSION);
      new DatabaseBackup(this, 'backup', {
        ...props.backup,
        image: props.backup?.image ?? backend.image,
        clientImage: props.backup?.clientImage ?? props.bucketJob?.image,
        context,
        secret,
        labels: backupLabels,
        backendStore: backend,
        artifactStore: artifacts,
      });
    }
    if (props.networkPolicies ?? true) {
      new NetworkPolicies(this, 'network-policies', {
        context,
        tracking: server.selector,
        bucketJob: bucketJob.podSelector,
        garbageCollection: gcLabels?.selector,
        backup: backupLabels?.selector,
        backendStore: backend,
        artifactStore: artifacts,
        serverPort: server.port,
      });
    }
    this.serviceName = server.serviceName;
    this.trackingUri = server.trackingUri;
    this.nodePort = server.nodePort;
    this.bucketJobName = bucketJob.jobName;
  }
}

/** Namespaces every cluster has; the stack must never own one. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** MinIO refuses to start with a root user under 3 or a password under 8 characters. */
function checkMinioCredentials(user: string, password: string, source: string): void {
  if (user.length < 3) {
    throw new ConfigError(`${source}: ${SecretKeys.AWS_ACCESS_KEY_ID} is MinIO's root user and must be at least 3 characters (got ${user.length})`);
  }
  if (password.length < 8) {
    throw new ConfigError(`${source}: ${SecretKeys.AWS_SECRET_ACCESS_KEY} is MinIO's root password and must be at least 8 characters (got ${password.length})`);
  }
}
