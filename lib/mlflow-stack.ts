import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Credentials } from './credentials/credentials';
import { CredentialsSecret } from './credentials/credentials-secret';
import { SecretKeys } from './credentials/secret-keys';
import { BackupOptions, DatabaseBackup } from './jobs/backup';
import { BucketJob, BucketJobOptions } from './jobs/bucket-job';
import { GarbageCollection, GarbageCollectionOptions } from './jobs/garbage-collection';
import { StackContext } from './kit/context';
import { ConfigError } from './kit/errors';
import { isEnabled } from './kit/feature';
import { PartLabels, LIBRARY_VERSION } from './kit/labels';
import { writeInStoredForm } from './kit/stored-form';
import { checkDnsLabel, checkDnsSubdomain } from './kit/validate';
import { NetworkPolicies, NetworkPolicyOptions } from './network/network-policies';
import { AuthOptions, authSecretEntries } from './server/auth';
import { checkIngressHost, IngressOptions, ServerIngress } from './server/ingress';
import { MetricsOptions, ServerMonitor } from './server/service-monitor';
import { ArtifactServing, TrackingServer, TrackingServerOptions } from './server/tracking-server';
import { checkRouteHostnames, HttpRouteOptions, ServerHttpRoute } from './server/http-route';
import { issuerPort, SingleSignOnOptions } from './server/single-sign-on';
import { CredentialValues } from './credentials/credential-values';
import { ArtifactStore } from './stores/artifact-store';
import { BackendStore } from './stores/backend-store';

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
   * @default - on
   */
  readonly networkPolicies?: NetworkPolicyOptions;
  /**
   * An Ingress in front of the server; its host is added to the allowed hosts and origins.
   * @default - none: the NodePort only
   */
  readonly ingress?: IngressOptions;
  /**
   * A Gateway API HTTPRoute to the server; its host names are added to the allowed hosts and origins.
   * @default - none
   */
  readonly httpRoute?: HttpRouteOptions;
  /**
   * Single sign-on with an OpenID Connect provider (oauth2-proxy in the server pod).
   * @default - off
   */
  readonly sso?: SingleSignOnOptions;
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
 *
 * Data flows one way: credentials -> Secret -> stores -> server and jobs -> NetworkPolicies, each
 * part exposing what the later ones need (labels, ports, hosts). Every object is finally written
 * in the form the API server stores it.
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
  /** NodePort of the UI and API (`http://<node-ip>:<nodePort>`); undefined with ClusterIP exposure. */
  public readonly nodePort?: number;
  /** Name of the bucket Job (it changes with the Job's content). */
  public readonly bucketJobName: string;
  /** Whether MLflow's basic auth is on. */
  public readonly authEnabled: boolean;
  /** Whether single sign-on guards the server. */
  public readonly singleSignOnEnabled: boolean;
  /** One line that says what was built: namespace, stores, node port. */
  public readonly summary: string;

  public constructor(scope: Construct, id: string, props: MlflowStackProps) {
    super(scope, id);
    const instance = checkDnsLabel(props.name ?? 'mlflow', 'name', 40);
    this.namespace = checkDnsLabel(props.namespace ?? 'default', 'namespace');
    const clusterDomain = checkDnsSubdomain(props.clusterDomain ?? 'cluster.local', 'clusterDomain');
    const { credentials } = props;
    const values = credentials.values;
    const artifactStore = props.artifactStore ?? (values?.s3EndpointUrl ? ArtifactStore.s3({ endpoint: values.s3EndpointUrl }) : ArtifactStore.minio());
    if (values?.s3EndpointUrl !== undefined && artifactStore.externalEndpoint !== values.s3EndpointUrl) {
      throw new ConfigError(
        `${credentials.source}: MLFLOW_S3_ENDPOINT_URL (${values.s3EndpointUrl}) conflicts with artifactStore ${artifactStore.externalEndpoint ? `endpoint ${artifactStore.externalEndpoint}` : '(in-cluster MinIO or AWS S3)'}; set the endpoint in one place`,
      );
    }
    const createNamespace = props.createNamespace ?? false;
    if (createNamespace && SYSTEM_NAMESPACES.includes(this.namespace)) {
      throw new ConfigError(`createNamespace cannot manage the system namespace ${this.namespace} (kubectl delete would try to delete it); set namespace to your own or createNamespace to false`);
    }
    if (createNamespace) {
      new kplus.Namespace(this, 'namespace', { metadata: { name: this.namespace, labels: new PartLabels(instance, 'mlflow', 'namespace', LIBRARY_VERSION).all } });
    }
    const auth = isEnabled(props.auth, values?.adminPassword !== undefined);
    if (auth && values && values.adminPassword === undefined) {
      throw new ConfigError(`auth.enabled is true but ${credentials.source} has no ${SecretKeys.MLFLOW_TRACKING_PASSWORD} (the admin password, at least 12 characters)`);
    }

    const credentialsSecret = new CredentialsSecret(this, 'credentials', {
      credentials,
      name: `${instance}-credentials`,
      namespace: this.namespace,
      labels: new PartLabels(instance, 'mlflow', 'credentials', LIBRARY_VERSION),
    });
    const context: StackContext = { instance, namespace: this.namespace, clusterDomain, secret: credentialsSecret.secret };
    const backend = (props.backendStore ?? BackendStore.postgres())._bind(this, context);
    const artifacts = artifactStore._bind(this, context);
    if (!values && backend.uriSettings.length > 0) {
      throw new ConfigError(
        `BackendStore.external({ ${backend.uriSettings.join(', ')} }) cannot take effect with ${credentials.source}: the Secret's ${SecretKeys.MLFLOW_BACKEND_STORE_URI} holds the whole URI; put the setting into that URI (e.g. ?sslmode=require) and leave it out here`,
      );
    }
    if (values) {
      if (artifacts.credentialsAreRootUser) checkMinioCredentials(values.awsAccessKeyId, values.awsSecretAccessKey, credentials.source);
      const databaseUri = backend.databaseUri(values);
      credentialsSecret.addDerived({
        [SecretKeys.MLFLOW_BACKEND_STORE_URI]: databaseUri,
        [SecretKeys.MLFLOW_S3_ENDPOINT_URL]: artifacts.endpointUrl,
        ...(auth ? authSecretEntries(values, databaseUri, props.auth ?? {}) : {}),
      });
    }

    const bucketJob = new BucketJob(this, 'bucket', { ...props.bucketJob, context, artifactStore: artifacts, values });
    const ingressHost = isEnabled(props.ingress, props.ingress !== undefined) ? checkIngressHost(props.ingress!.host) : undefined;
    const routeHosts = isEnabled(props.httpRoute, props.httpRoute !== undefined) ? checkRouteHostnames(props.httpRoute!) : [];
    const twice = routeHosts.find((h) => h === ingressHost);
    if (twice) {
      throw new ConfigError(`${twice} is configured both as ingress.host and in httpRoute.hostnames; route each host one way`);
    }
    const sso = isEnabled(props.sso, props.sso !== undefined) ? props.sso : undefined;
    const metrics = isEnabled(props.metrics, props.metrics !== undefined);
    if (sso) checkSingleSignOn({ auth, values, credentials, props });
    const server = new TrackingServer(this, 'server', {
      ...props.server,
      context,
      backendStore: backend,
      artifactStore: artifacts,
      auth,
      metrics,
      routedHosts: [...(ingressHost ? [ingressHost] : []), ...routeHosts],
      singleSignOn: sso,
      hasKekPassphrase: values ? values.kekPassphrase !== undefined : undefined,
    });
    if (ingressHost) new ServerIngress(this, 'ingress', { ...props.ingress!, context, server });
    if (routeHosts.length) new ServerHttpRoute(this, 'route', { ...props.httpRoute!, context, server });
    if (metrics && (props.metrics?.serviceMonitor ?? true)) {
      new ServerMonitor(this, 'monitor', { context, server, auth, interval: props.metrics?.interval ?? Duration.seconds(30) });
    }
    const gc = isEnabled(props.garbageCollection, props.garbageCollection !== undefined)
      ? new GarbageCollection(this, 'gc', { ...props.garbageCollection, context, server, artifactStore: artifacts, auth })
      : undefined;
    const backup = isEnabled(props.backup, backend.labels !== undefined)
      ? new DatabaseBackup(this, 'backup', { ...props.backup, context, backendStore: backend, artifactStore: artifacts, bucketJob, artifactRoot: values?.artifactRoot })
      : undefined;
    if (isEnabled(props.networkPolicies, true)) {
      new NetworkPolicies(this, 'network-policies', {
        context, server, bucketJob, garbageCollection: gc, backup, backendStore: backend, artifactStore: artifacts,
        identityProviderPort: sso ? issuerPort(sso) : undefined,
      });
    }
    if (server.nodePort !== undefined) claimNodePort(this, server.nodePort);
    writeInStoredForm(this);

    this.secretName = context.secret.name;
    this.serviceName = server.serviceName;
    this.trackingUri = server.trackingUri;
    this.nodePort = server.nodePort;
    this.bucketJobName = bucketJob.jobName;
    this.authEnabled = auth;
    this.singleSignOnEnabled = sso !== undefined;
    const database = backend.labels ? 'PostgreSQL in the cluster' : `${backend.engine === 'mysql' ? 'MySQL' : 'PostgreSQL'} at ${backend.host}:${backend.port}`;
    const s3 = artifacts.labels ? `${artifacts.labels.appName === 'seaweedfs' ? 'SeaweedFS' : 'MinIO'} in the cluster` : `S3 at ${artifacts.endpointUrl ?? 'AWS'}`;
    this.summary = `${instance} in namespace ${this.namespace}, ${database}, ${s3}, ${server.nodePort ? `NodePort ${server.nodePort}` : 'ClusterIP'}${sso ? ', single sign-on' : ''}`;
  }
}

/** Single sign-on replaces basic auth, needs its two secrets, and leaves no client without a way in. */
function checkSingleSignOn(stack: { auth: boolean; values?: CredentialValues; credentials: Credentials; props: MlflowStackProps }): void {
  if (stack.auth) {
    throw new ConfigError('sso and basic auth are both on: single sign-on replaces MLflow\'s basic auth; set auth.enabled to false (and drop MLFLOW_TRACKING_PASSWORD from .env)');
  }
  for (const [key, value] of [[SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, stack.values?.ssoClientSecret], [SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, stack.values?.ssoCookieSecret]]) {
    if (stack.values && value === undefined) throw new ConfigError(`sso is on but ${stack.credentials.source} has no ${key}`);
  }
  if (isEnabled(stack.props.metrics, stack.props.metrics !== undefined)) {
    throw new ConfigError('sso and metrics conflict: Prometheus would have to sign in at the provider to scrape /metrics; turn metrics off or sso off');
  }
  const proxied = (stack.props.server?.artifactServing ?? ArtifactServing.PROXIED) === ArtifactServing.PROXIED;
  if (proxied && isEnabled(stack.props.garbageCollection, stack.props.garbageCollection !== undefined)) {
    throw new ConfigError('sso and garbageCollection conflict with proxied artifacts: mlflow gc deletes them through the server, which would refuse it; turn one off');
  }
}

/** Node ports are cluster-wide: two stacks of one app must not both take one (the cluster would refuse the second Service). */
const NODE_PORTS = Symbol.for('cdk8s-mlflow.nodePorts');

function claimNodePort(stack: Construct, port: number): void {
  const root = stack.node.root as unknown as { [NODE_PORTS]?: Map<number, string> };
  const claimed = (root[NODE_PORTS] ??= new Map<number, string>());
  const other = claimed.get(port);
  if (other !== undefined) {
    throw new ConfigError(`server.nodePort ${port} of the stack at ${stack.node.path} is already taken by the stack at ${other}; node ports are cluster-wide, give each stack its own (30000-32767)`);
  }
  claimed.set(port, stack.node.path);
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
