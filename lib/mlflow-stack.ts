import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { MlflowStackProps } from './stack-props';
import { CredentialsSecret } from './credentials/credentials-secret';
import { SecretKeys } from './credentials/secret-keys';
import { DatabaseBackup } from './jobs/backup';
import { BucketJob } from './jobs/bucket-job';
import { GarbageCollection } from './jobs/garbage-collection';
import { StackContext } from './kit/context';
import { ConfigError } from './kit/errors';
import { isEnabled } from './kit/feature';
import { checkImageOptions } from './kit/images';
import { checkPodOptions } from './kit/pods';
import { settingSchema } from './kit/settings';
import { PartLabels, LIBRARY_VERSION } from './kit/labels';
import { writeInStoredForm } from './kit/stored-form';
import { checkDnsLabel, checkDnsSubdomain } from './kit/validate';
import { StackMonitoring } from './monitoring/stack-monitoring';
import { NetworkPolicies } from './network/network-policies';
import { authSecretEntries } from './server/auth';
import { checkIngressHost, ServerIngress } from './server/ingress';
import { METRICS_PORT, scrapeNamespaces } from './server/metrics';
import { ServerMonitor } from './server/service-monitor';
import { ArtifactServing } from './server/server-options';
import { TrackingServer } from './server/tracking-server';
import { checkRouteHostnames, ServerHttpRoute } from './server/http-route';
import { issuerPort } from './server/single-sign-on';
import { ArtifactStore } from './stores/artifact-store';
import { BackendStore } from './stores/backend-store';

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
  /** The tracking server's Deployment. */
  public readonly serverDeployment: kplus.Deployment;
  /** The tracking server's Service. */
  public readonly serverService: kplus.Service;
  /** The in-cluster PostgreSQL's StatefulSet; undefined with an external database. */
  public readonly backendStoreStatefulSet?: k8s.KubeStatefulSet;
  /** The in-cluster S3 server's (MinIO's or SeaweedFS's) StatefulSet; undefined with an external S3. */
  public readonly artifactStoreStatefulSet?: k8s.KubeStatefulSet;
  /** The Job that creates the bucket. */
  public readonly bucketJob: kplus.Job;
  /** The credentials Secret; undefined when the stack uses an existing one (`Credentials.fromSecretName`). */
  public readonly credentialsSecret?: kplus.Secret;
  /** The backup CronJob; undefined when backups are off. */
  public readonly backupCronJob?: kplus.CronJob;
  /** The garbage collection CronJob; undefined when it is off. */
  public readonly garbageCollectionCronJob?: kplus.CronJob;

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
    const context: StackContext = {
      instance, namespace: this.namespace, clusterDomain, secret: credentials.secret,
      pods: checkPodOptions(props.pods, 'pods'), images: checkImageOptions(props.images),
    };
    const { backend, artifacts, auth } = bindStores(this, props, credentials, context);
    const values = credentials.values;

    const bucketJob = new BucketJob(this, 'bucket', { ...props.bucketJob, context, artifactStore: artifacts, values });
    const { ingressHost, routeHosts } = routedHosts(props);
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
    const interval = props.metrics?.interval ?? Duration.seconds(30);
    const serviceMonitor = props.metrics?.serviceMonitor ?? true;
    const scrapeFrom = metrics ? scrapeNamespaces(props.metrics) : undefined;
    const monitor = metrics ? new ServerMonitor(this, 'monitor', { context, server, serviceMonitor, interval }) : undefined;
    const gc = isEnabled(props.garbageCollection, props.garbageCollection !== undefined)
      ? new GarbageCollection(this, 'gc', { ...props.garbageCollection, context, server, artifactStore: artifacts, auth })
      : undefined;
    // The stack backs up the data it holds; a database that lives elsewhere is its owner's to back up.
    const backup = isEnabled(props.backup, backend.inCluster !== undefined)
      ? new DatabaseBackup(this, 'backup', { ...props.backup, context, backendStore: backend, artifactStore: artifacts, bucketJob, artifactRoot: values?.artifactRoot })
      : undefined;
    if (monitor) {
      new StackMonitoring(this, 'monitoring', {
        context, alerts: props.metrics?.alerts, serviceMonitor, dashboard: props.metrics?.dashboard,
        metricsJob: monitor.serviceName, deployment: server.serviceName, serverSelector: server.labels.selector, intervalSeconds: interval.toSeconds(),
        databaseStatefulSet: backend.inCluster && `${instance}-${backend.inCluster.name}`,
        artifactStatefulSet: artifacts.inCluster && `${instance}-${artifacts.inCluster.name}`,
        artifactStoreName: artifacts.inCluster && artifacts.displayName.replace(/ in the cluster$/, ''),
        backup: backup?.job, gcCronJob: gc?.job.name,
      });
    }
    if (isEnabled(props.networkPolicies, true)) {
      new NetworkPolicies(this, 'network-policies', {
        context, server, bucketJob, garbageCollection: gc, backup, backendStore: backend, artifactStore: artifacts,
        identityProviderPort: sso ? issuerPort(sso) : undefined,
        metrics: metrics ? { port: METRICS_PORT, scrapeFrom } : undefined,
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
    this.serverDeployment = server.deployment;
    this.serverService = server.service;
    this.backendStoreStatefulSet = backend.inCluster?.statefulSet;
    this.artifactStoreStatefulSet = artifacts.inCluster?.statefulSet;
    this.bucketJob = bucketJob.job;
    this.credentialsSecret = credentials.created;
    this.backupCronJob = backup?.cronJob;
    this.garbageCollectionCronJob = gc?.cronJob;
    this.summary = `${instance} in namespace ${this.namespace}, ${backend.displayName}, ${artifacts.displayName}, ${server.nodePort ? `NodePort ${server.nodePort}` : 'ClusterIP'}${sso ? ', single sign-on' : ''}`;
  }
}

/**
 * Binds the stores (each makes what it runs) and writes the Secret once they are known: the
 * credentials and what is derived from them and the stores (the database URI, the S3 endpoint, basic auth).
 */
function bindStores(stack: Construct, props: MlflowStackProps, credentials: CredentialsSecret, context: StackContext) {
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
  const backend = (props.backendStore ?? BackendStore.postgres())._bind(stack, context);
  const artifacts = artifactStore._bind(stack, context);
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
  return { backend, artifacts, auth };
}

/** The host names the stack routes to the server (Ingress, HTTPRoute), each routed one way. */
function routedHosts(props: MlflowStackProps): { ingressHost?: string; routeHosts: string[] } {
  const ingressHost = isEnabled(props.ingress, props.ingress !== undefined) ? checkIngressHost(props.ingress!.host) : undefined;
  const routeHosts = isEnabled(props.httpRoute, props.httpRoute !== undefined) ? checkRouteHostnames(props.httpRoute!) : [];
  const twice = routeHosts.find((h) => h === ingressHost);
  if (twice) {
    throw new ConfigError(`${twice} is configured both as ingress.host and in httpRoute.hostnames; route each host one way`, ['httpRoute.hostnames', 'ingress.host']);
  }
  return { ingressHost, routeHosts };
}

/** Single sign-on replaces basic auth, needs its two secrets, and leaves no client without a way in. */
function checkSingleSignOn(auth: boolean, credentials: CredentialsSecret, props: MlflowStackProps): void {
  if (auth) {
    throw new ConfigError('sso and basic auth are both on: single sign-on replaces MLflow\'s basic auth; set auth.enabled to false (and drop MLFLOW_TRACKING_PASSWORD from .env)', ['auth.enabled', 'sso']);
  }
  credentials.require(SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, 'sso is on', ['sso']);
  credentials.require(SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, 'sso is on', ['sso']);
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
