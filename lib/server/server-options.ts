import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { PodOptions } from '../kit/pods';
import { AutoscalingOptions } from './availability';
import { SecretKeyReference, ServerVolume } from './extras';
import { GatewayOptions } from './gateway';
import { JobsOptions } from './jobs';
import { TelemetryOptions } from './telemetry';
import { WorkspacesOptions } from './workspaces';

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
   * @minimum 1
   * @maximum 100
   */
  readonly replicas?: number;
  /**
   * uvicorn worker processes per pod (`--workers`); each holds its own database pool and memory.
   * @default 2
   * @minimum 1
   * @maximum 64
   */
  readonly workers?: number;
  /**
   * NodePort of the UI and API, unique in the cluster.
   * @default 30003
   * @minimum 30000
   * @maximum 32767
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
   * @minimum 1
   * @maximum 3600
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
  /**
   * Pod settings of the server's pods (and so of the single sign-on proxy beside it), over the
   * stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
  /**
   * More environment variables of the server's MLflow processes (the `mlflow` container and its
   * `migrate` init container): proxies (`HTTPS_PROXY`, `NO_PROXY`), a CA bundle's path
   * (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`), the AI gateway's provider settings. The values are
   * written into the manifest, so names that end like a secret's (`..._API_KEY`, `..._TOKEN`,
   * `..._SECRET`, `..._PASSWORD`, `..._KEY`) and URLs with a password are refused: give those through
   * `extraEnvFromSecrets`. Names the stack sets itself are refused too.
   * @default - none
   */
  readonly extraEnv?: { [name: string]: string };
  /**
   * Environment variables of the server's MLflow processes read from keys of Secrets you manage in
   * the stack's namespace, e.g. `{ OPENAI_API_KEY: { name: 'ai-providers', key: 'openai' } }`: the
   * manifest holds only the Secret's name and key, never the value.
   * @default - none
   */
  readonly extraEnvFromSecrets?: { [name: string]: SecretKeyReference };
  /**
   * ConfigMaps or Secrets you manage, mounted read-only into the server's MLflow processes, e.g. a
   * CA bundle: `[{ name: 'corp-ca', configMap: 'corp-ca', mountPath: '/etc/ssl/corp' }]` with
   * `extraEnv: { REQUESTS_CA_BUNDLE: '/etc/ssl/corp/ca.crt' }`.
   * @default - none
   */
  readonly extraVolumes?: ServerVolume[];
}
