import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { SecretKeys } from '../credentials/secret-keys';
import { defaultImage, partLabels, partPods, StackContext } from '../kit/context';
import { DefaultImages } from '../kit/images';
import { ConfigError } from '../kit/errors';
import { imageVersion } from '../kit/labels';
import { PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { InClusterPart, InClusterS3Server } from './in-cluster';
import { SinglePodStore } from './single-pod-store';

/** Options for MinIO inside the cluster. */
export interface MinioOptions {
  /**
   * MinIO server image. MinIO publishes no newer images (the project is archived): pin your own build for fixes.
   * @default 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z'
   */
  readonly image?: string;
  /**
   * Size of the data volume.
   * @default Size.gibibytes(20)
   */
  readonly storage?: Size;
  /**
   * StorageClass of the data volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * CPU and memory.
   * @default - requests 250m CPU / 512Mi, limits 2 CPU / 2Gi
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * Pod settings of its pod, over the stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
}

const MINIO_UID = 1000;
const API_PORT = 9000;
const CONSOLE_PORT = 9001;

/** A single-node MinIO server: a StatefulSet with one PersistentVolumeClaim and a Service for the S3 API and console. */
export class Minio extends Construct implements InClusterS3Server {
  /** The S3 endpoint inside the cluster, with scheme. */
  public readonly endpointUrl: string;
  /** The S3 API port. */
  public readonly port = API_PORT;
  public readonly displayName = 'MinIO in the cluster';
  /** MinIO's pods. */
  public readonly part: InClusterPart;

  public constructor(scope: Construct, id: string, context: StackContext, options: MinioOptions) {
    super(scope, id);
    const image = options.image ?? defaultImage(context, DefaultImages.MINIO);
    const labels = partLabels(context, 'minio', 'artifact-store', imageVersion(image));
    const fromSecret = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: context.secret.name, key } } });
    const httpGet = (path: string): k8s.Probe => ({ httpGet: { path, port: k8s.IntOrString.fromString('s3') }, timeoutSeconds: 5 });
    const store = new SinglePodStore(this, 'store', {
      context,
      labels,
      name: `${context.instance}-minio`,
      ports: [{ name: 's3', port: API_PORT }, { name: 'console', port: CONSOLE_PORT }],
      headless: false,
      uid: MINIO_UID,
      containerName: 'minio',
      container: {
        image,
        command: ['minio'],
        args: ['server', '/data', '--address', `:${API_PORT}`, '--console-address', `:${CONSOLE_PORT}`, '--certs-dir', '/tmp/certs'],
        env: [
          fromSecret('MINIO_ROOT_USER', SecretKeys.AWS_ACCESS_KEY_ID),
          fromSecret('MINIO_ROOT_PASSWORD', SecretKeys.AWS_SECRET_ACCESS_KEY),
          { name: 'HOME', value: '/tmp' },
          { name: 'MINIO_UPDATE', value: 'off' },
        ],
        startupProbe: { ...httpGet('/minio/health/live'), periodSeconds: 5, failureThreshold: 60 },
        readinessProbe: { ...httpGet('/minio/health/ready'), periodSeconds: 10, failureThreshold: 3 },
        livenessProbe: { ...httpGet('/minio/health/live'), periodSeconds: 20, failureThreshold: 6 },
        volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' }],
      },
      resources: options.resources ?? resources(250, 512, 2000, 2048),
      volumes: [{ name: 'tmp', emptyDir: {} }],
      storage: options.storage ?? Size.gibibytes(20),
      storageClassName: options.storageClassName,
      storageClassProp: 'artifactStore.minio.storageClassName',
      pods: partPods(context, options.pods, 'artifactStore.minio.pods'),
    });
    this.endpointUrl = `http://${store.host}:${API_PORT}`;
    this.part = { labels, name: 'minio', statefulSet: store.statefulSet };
  }

  /** MinIO takes the S3 keys as its root user and password, and refuses to start with a user under 3 or a password under 8 characters. */
  public checkCredentials(values: CredentialValues, source: string): void {
    if (values.awsAccessKeyId.length < 3) {
      throw new ConfigError(`${source}: ${SecretKeys.AWS_ACCESS_KEY_ID} is MinIO's root user and must be at least 3 characters (got ${values.awsAccessKeyId.length})`, SecretKeys.AWS_ACCESS_KEY_ID);
    }
    if (values.awsSecretAccessKey.length < 8) {
      throw new ConfigError(`${source}: ${SecretKeys.AWS_SECRET_ACCESS_KEY} is MinIO's root password and must be at least 8 characters (got ${values.awsSecretAccessKey.length})`, SecretKeys.AWS_SECRET_ACCESS_KEY);
    }
  }
}
