import { Construct } from 'constructs';
import { StackContext } from '../kit/context';
import { PartLabels } from '../kit/labels';
import { checkHttpUrl } from '../kit/validate';
import { Minio, MinioOptions } from './minio';
import { Seaweedfs, SeaweedfsOptions } from './seaweedfs';

/** How the stack's S3 clients reach the artifact store; what every artifact store provides. */
export interface ArtifactStoreConnection {
  /** S3 endpoint with scheme; undefined means AWS S3. */
  readonly endpointUrl?: string;
  /** The endpoint's TCP port. */
  readonly port: number;
  /** Skip TLS verification of the endpoint (self-signed certificates). */
  readonly ignoreTls: boolean;
  /** The S3 credentials are also the store's root user and password (in-cluster MinIO), so MinIO's length rules apply. */
  readonly credentialsAreRootUser: boolean;
  /** Labels of the in-cluster store's pods, when the store runs in the cluster. */
  readonly labels?: PartLabels;
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

/** An S3 server the stack runs itself (MinIO or SeaweedFS). */
class InClusterS3 extends ArtifactStore {
  public readonly externalEndpoint = undefined;

  public constructor(private readonly create: (scope: Construct, context: StackContext) => Minio | Seaweedfs) {
    super();
  }

  public _bind(scope: Construct, context: StackContext): ArtifactStoreConnection {
    const store = this.create(scope, context);
    // MinIO takes the S3 keys as its root user and password, with length rules of its own.
    return { endpointUrl: store.endpointUrl, port: store.port, ignoreTls: false, credentialsAreRootUser: store instanceof Minio, labels: store.labels };
  }
}

class ExternalS3 extends ArtifactStore {
  public readonly externalEndpoint?: string;
  private readonly ignoreTls: boolean;

  public constructor(options: S3Options) {
    super();
    this.externalEndpoint = options.endpoint === undefined ? undefined : checkHttpUrl(options.endpoint, 'ArtifactStore.s3({ endpoint })');
    this.ignoreTls = options.ignoreTls ?? false;
  }

  public _bind(): ArtifactStoreConnection {
    return { endpointUrl: this.externalEndpoint, port: portOf(this.externalEndpoint), ignoreTls: this.ignoreTls, credentialsAreRootUser: false };
  }
}

/** The TCP port of an S3 endpoint URL; AWS S3 (no URL) is HTTPS. */
function portOf(endpointUrl: string | undefined): number {
  if (endpointUrl === undefined) return 443;
  const url = new URL(endpointUrl);
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}
