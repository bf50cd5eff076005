import { Credentials } from './credentials/credentials';
import { BackupOptions } from './jobs/backup';
import { BucketJobOptions } from './jobs/bucket-job';
import { GarbageCollectionOptions } from './jobs/garbage-collection';
import { ImageOptions } from './kit/images';
import { PodOptions } from './kit/pods';
import { NetworkPolicyOptions } from './network/network-policies';
import { AuthOptions } from './server/auth';
import { HttpRouteOptions } from './server/http-route';
import { IngressOptions } from './server/ingress';
import { MetricsOptions } from './server/metrics';
import { TrackingServerOptions } from './server/server-options';
import { SingleSignOnOptions } from './server/single-sign-on';
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
   * Where the default images are pulled from: one mirror for all (`registry`), or one per source
   * registry (`mirrors`). Images given explicitly in a part's settings are used as written.
   * @default - each image from its own registry (see DefaultImages)
   */
  readonly images?: ImageOptions;
  /**
   * Scheduling (node selector, tolerations, affinity, priority class), image pull secrets and pod
   * template annotations and labels for every pod of the stack: the server, the in-cluster stores,
   * the bucket Job and the scheduled jobs. Each part's own `pods` overrides these (see PodOptions).
   * @default - none
   */
  readonly pods?: PodOptions;
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
