import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { SecretKeys } from '../credentials/secret-keys';
import { StackContext } from '../kit/context';
import { checkHttpUrl } from '../kit/validate';
import { InClusterPart, InClusterS3Server } from './in-cluster';
import { Minio, MinioOptions } from './minio';
import { Seaweedfs, SeaweedfsOptions } from './seaweedfs';

/** What an artifact store tells the rest of the stack; nothing outside the store asks which one it is. */
export interface ArtifactStoreConnection {
  /** S3 endpoint with scheme; undefined means AWS S3. */
  readonly endpointUrl?: string;
  /** The endpoint's TCP port. */
  readonly port: number;
  /** Skip TLS verification of the endpoint (self-signed certificates). */
  readonly ignoreTls: boolean;
  /** What the summary line calls it: `MinIO in the cluster`, `S3 at https://s3.example.com`. */
  readonly displayName: string;
  /** The store's pods, when it runs in the stack. */
  readonly inCluster?: InClusterPart;
  /**
   * The store's own rule for the S3 credentials (MinIO takes them as its root user and password);
   * throws a ConfigError naming `source`.
   */
  readonly checkCredentials?: (values: CredentialValues, source: string) => void;
  /**
   * The environment an S3 client (boto3 in MLflow, `mc` in the jobs) needs, every value read from
   * the credentials Secret so that no credential appears in a manifest.
   */
  clientEnv(secret: kplus.ISecret): Record<string, kplus.EnvValue>;
}

/** Options for an S3 service that runs outside this stack. */
export interface S3Options {
  /**
   * Endpoint of an S3-compatible service, with scheme (`https://s3.example.com`).
   * @default - AWS S3
   */
  readonly endpoint?: string;
  /**
   * Accept a self-signed TLS certificate on the endpoint (`MLFLOW_S3_IGNORE_TLS`, `mc --insecure`).
   * @default false
   */
  readonly ignoreTls?: boolean;
}

/** Where MLflow keeps artifacts (models, files). Create with a static factory. */
export abstract class ArtifactStore {
  /** MinIO inside the cluster, with a PersistentVolumeClaim that outlives uninstall. */
  public static minio(options: MinioOptions = {}): ArtifactStore {
    return new InClusterS3((scope, context) => new Minio(scope, 'minio', context, options));
  }

  /** SeaweedFS inside the cluster (maintained, Apache-2.0), with a PersistentVolumeClaim that outlives uninstall. */
  public static seaweedfs(options: SeaweedfsOptions = {}): ArtifactStore {
    return new InClusterS3((scope, context) => new Seaweedfs(scope, 'seaweedfs', context, options));
  }

  /** AWS S3, or any S3-compatible endpoint you already run. */
  public static s3(options: S3Options = {}): ArtifactStore {
    return new ExternalS3(options);
  }

  /** The external endpoint, when this store has one; undefined for in-cluster MinIO and AWS S3. */
  public abstract readonly externalEndpoint?: string;

  /**
   * Creates whatever the store needs in `scope` and says how to reach it.
   * @internal
   */
  public abstract _bind(scope: Construct, context: StackContext): ArtifactStoreConnection;
}

function s3ClientEnv(secret: kplus.ISecret, endpointUrl: string | undefined, ignoreTls: boolean): Record<string, kplus.EnvValue> {
  const env: Record<string, kplus.EnvValue> = {
    AWS_ACCESS_KEY_ID: secret.envValue(SecretKeys.AWS_ACCESS_KEY_ID),
    AWS_SECRET_ACCESS_KEY: secret.envValue(SecretKeys.AWS_SECRET_ACCESS_KEY),
    AWS_DEFAULT_REGION: secret.envValue(SecretKeys.AWS_DEFAULT_REGION, { optional: true }),
  };
  if (endpointUrl !== undefined) env.MLFLOW_S3_ENDPOINT_URL = secret.envValue(SecretKeys.MLFLOW_S3_ENDPOINT_URL);
  if (ignoreTls) env.MLFLOW_S3_IGNORE_TLS = kplus.EnvValue.fromValue('true');
  return env;
}

/** An S3 server the stack runs itself (MinIO or SeaweedFS). */
class InClusterS3 extends ArtifactStore {
  public readonly externalEndpoint = undefined;

  public constructor(private readonly create: (scope: Construct, context: StackContext) => InClusterS3Server) {
    super();
  }

  public _bind(scope: Construct, context: StackContext): ArtifactStoreConnection {
    const server = this.create(scope, context);
    const { endpointUrl, port, displayName, checkCredentials } = server;
    return { endpointUrl, port, ignoreTls: false, displayName, inCluster: server.part, checkCredentials, clientEnv: (secret) => s3ClientEnv(secret, endpointUrl, false) };
  }
}

class ExternalS3 extends ArtifactStore {
  public readonly externalEndpoint?: string;
  private readonly ignoreTls: boolean;

  public constructor(options: S3Options) {
    super();
    this.externalEndpoint = options.endpoint === undefined ? undefined : checkHttpUrl(options.endpoint, 'artifactStore.s3.endpoint');
    this.ignoreTls = options.ignoreTls ?? false;
  }

  public _bind(): ArtifactStoreConnection {
    const { externalEndpoint: endpointUrl, ignoreTls } = this;
    return {
      endpointUrl,
      port: portOf(endpointUrl),
      ignoreTls,
      displayName: `S3 at ${endpointUrl ?? 'AWS'}`,
      clientEnv: (secret) => s3ClientEnv(secret, endpointUrl, ignoreTls),
    };
  }
}

/** The TCP port of an S3 endpoint URL; AWS S3 (no URL) is HTTPS. */
function portOf(endpointUrl: string | undefined): number {
  if (endpointUrl === undefined) return 443;
  const url = new URL(endpointUrl);
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}
