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
import { settingSchema } from './kit/settings';
import { PartLabels, LIBRARY_VERSION } from './kit/labels';
import { writeInStoredForm } from './kit/stored-form';
import { checkDnsLabel, checkDnsSubdomain } from './kit/validate';
import { NetworkPolicies, NetworkPolicyOptions } from './network/network-policies';
import { AuthOptions, authSecretEntries } from './server/auth';
import { checkIngressHost, IngressOptions, ServerIngress } from './server/ingress';
import { MetricsOptions } from './server/metrics';
import { ServerMonitor } from './server/service-monitor';
import { ArtifactServing, TrackingServerOptions } from './server/server-options';
import { TrackingServer } from './server/tracking-server';
import { checkRouteHostnames, HttpRouteOptions, ServerHttpRoute } from './server/http-route';
import { issuerPort, SingleSignOnOptions } from './server/single-sign-on';
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
    const createNamespace = props.createNamespace ?? false;
    if (createNamespace && SYSTEM_NAMESPACES.includes(this.namespace)) {
      throw new ConfigError(`createNamespace cannot manage the system namespace ${this.namespace} (kubectl delete would try to delete it); set namespace to your own or createNamespace to false`, ['createNamespace', 'namespace']);
    }
    if (createNamespace) {
      new kplus.Namespace(this, 'namespace', { metadata: { name: this.namespace, labels: new PartLabels(instance, 'mlflow', 'namespace', LIBRARY_VERSION).all } });
    }

    // The Secret is referenced by name from here on, and written once the stores are known.
    const credentials = new CredentialsSecret(this, 'credentials', {
      credentials: props.credentials,
      name: `${instance}-credentials`,
      namespace: this.namespace,
      labels: new PartLabels(instance, 'mlflow', 'credentials', LIBRARY_VERSION),
    });
    const { values, source } = credentials;
    const endpoint = values?.s3EndpointUrl;
    const artifactStore = props.artifactStore ?? (endpoint ? ArtifactStore.s3({ endpoint }) : ArtifactStore.minio());
    if (endpoint !== undefined && artifactStore.externalEndpoint !== endpoint) {
      throw new ConfigError(
        `${source}: MLFLOW_S3_ENDPOINT_URL (${endpoint}) conflicts with artifactStore ${artifactStore.externalEndpoint ? `endpoint ${artifactStore.externalEndpoint}` : '(in-cluster MinIO or AWS S3)'}; set the endpoint in one place`,
        ['artifactStore', SecretKeys.MLFLOW_S3_ENDPOINT_URL],
      );
    }
    const auth = isEnabled(props.auth, credentials.has(SecretKeys.MLFLOW_TRACKING_PASSWORD));
    if (auth) credentials.require(SecretKeys.MLFLOW_TRACKING_PASSWORD, 'auth.enabled is true', ['auth.enabled', 'auth']);

    const context: StackContext = { instance, namespace: this.namespace, clusterDomain, secret: credentials.secret };
    const backend = (props.backendStore ?? BackendStore.postgres())._bind(this, context);
    const artifacts = artifactStore._bind(this, context);
    if (!values && backend.uriSettings.length > 0) {
      throw new ConfigError(
        `backendStore.external.${backend.uriSettings.join(', ')} cannot take effect with ${source}: the Secret's ${SecretKeys.MLFLOW_BACKEND_STORE_URI} holds the whole URI; put the setting into that URI (e.g. ?sslmode=require) and leave it out here`,
        [...backend.uriSettings.map((k) => `backendStore.external.${k}`), 'credentials.existingSecret'],
      );
    }
    if (values) artifacts.checkCredentials?.(values, source);
    const databaseUri = values ? backend.databaseUri(values) : undefined;
    credentials.write({
      [SecretKeys.MLFLOW_BACKEND_STORE_URI]: databaseUri,
      [SecretKeys.MLFLOW_S3_ENDPOINT_URL]: artifacts.endpointUrl,
      ...(auth && values ? authSecretEntries(values, databaseUri!, props.auth ?? {}) : {}),
    });

    const bucketJob = new BucketJob(this, 'bucket', { ...props.bucketJob, context, artifactStore: artifacts, values });
    const ingressHost = isEnabled(props.ingress, props.ingress !== undefined) ? checkIngressHost(props.ingress!.host) : undefined;
    const routeHosts = isEnabled(props.httpRoute, props.httpRoute !== undefined) ? checkRouteHostnames(props.httpRoute!) : [];
    const twice = routeHosts.find((h) => h === ingressHost);
    if (twice) {
      throw new ConfigError(`${twice} is configured both as ingress.host and in httpRoute.hostnames; route each host one way`, ['httpRoute.hostnames', 'ingress.host']);
    }
    const sso = isEnabled(props.sso, props.sso !== undefined) ? props.sso : undefined;
    const metrics = isEnabled(props.metrics, props.metrics !== undefined);
    if (sso) checkSingleSignOn(auth, credentials, props);
    const server = new TrackingServer(this, 'server', {
      ...props.server,
      context,
      backendStore: backend,
      artifactStore: artifacts,
      auth,
      metrics,
      routedHosts: [...(ingressHost ? [ingressHost] : []), ...routeHosts],
      singleSignOn: sso,
      hasKekPassphrase: values ? credentials.has(SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE) : undefined,
    });
    if (ingressHost) new ServerIngress(this, 'ingress', { ...props.ingress!, context, server });
    if (routeHosts.length) new ServerHttpRoute(this, 'route', { ...props.httpRoute!, context, server });
    if (metrics && (props.metrics?.serviceMonitor ?? true)) {
      new ServerMonitor(this, 'monitor', { context, server, auth, interval: props.metrics?.interval ?? Duration.seconds(30) });
    }
    const gc = isEnabled(props.garbageCollection, props.garbageCollection !== undefined)
      ? new GarbageCollection(this, 'gc', { ...props.garbageCollection, context, server, artifactStore: artifacts, auth })
      : undefined;
    // The stack backs up the data it holds; a database that lives elsewhere is its owner's to back up.
    const backup = isEnabled(props.backup, backend.inCluster !== undefined)
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
    this.summary = `${instance} in namespace ${this.namespace}, ${backend.displayName}, ${artifacts.displayName}, ${server.nodePort ? `NodePort ${server.nodePort}` : 'ClusterIP'}${sso ? ', single sign-on' : ''}`;
  }
}

/** Single sign-on replaces basic auth, needs its two secrets, and leaves no client without a way in. */
function checkSingleSignOn(auth: boolean, credentials: CredentialsSecret, props: MlflowStackProps): void {
  if (auth) {
    throw new ConfigError('sso and basic auth are both on: single sign-on replaces MLflow\'s basic auth; set auth.enabled to false (and drop MLFLOW_TRACKING_PASSWORD from .env)', ['auth.enabled', 'sso']);
  }
  credentials.require(SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, 'sso is on', ['sso']);
  credentials.require(SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, 'sso is on', ['sso']);
  if (isEnabled(props.metrics, props.metrics !== undefined)) {
    throw new ConfigError('sso and metrics conflict: Prometheus would have to sign in at the provider to scrape /metrics; turn metrics off or sso off', ['metrics', 'sso']);
  }
  const proxied = (props.server?.artifactServing ?? ArtifactServing.PROXIED) === ArtifactServing.PROXIED;
  if (proxied && isEnabled(props.garbageCollection, props.garbageCollection !== undefined)) {
    throw new ConfigError('sso and garbageCollection conflict with proxied artifacts: mlflow gc deletes them through the server, which would refuse it; turn one off', ['garbageCollection', 'sso']);
  }
}

/** Node ports are cluster-wide: two stacks of one app must not both take one (the cluster would refuse the second Service). */
const NODE_PORTS = Symbol.for('cdk8s-mlflow.nodePorts');

function claimNodePort(stack: Construct, port: number): void {
  const root = stack.node.root as unknown as { [NODE_PORTS]?: Map<number, string> };
  const claimed = (root[NODE_PORTS] ??= new Map<number, string>());
  const other = claimed.get(port);
  if (other !== undefined) {
    const { minimum, maximum } = settingSchema('server.nodePort');
    throw new ConfigError(`server.nodePort ${port} of the stack at ${stack.node.path} is already taken by the stack at ${other}; node ports are cluster-wide, give each stack its own (${minimum}-${maximum})`, 'server.nodePort');
  }
  claimed.set(port, stack.node.path);
}

/** Namespaces every cluster has; the stack must never own one. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
