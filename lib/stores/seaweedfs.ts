import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { defaultImage, partLabels, partPods, StackContext } from '../kit/context';
import { DefaultImages } from '../kit/images';
import { imageVersion } from '../kit/labels';
import { PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { InClusterPart, InClusterS3Server } from './in-cluster';
import { SinglePodStore } from './single-pod-store';

/** Options for SeaweedFS inside the cluster. */
export interface SeaweedfsOptions {
  /**
   * SeaweedFS image. The `_large_disk` builds store volumes in another format than the plain ones:
   * never switch a volume between them.
   * @default 'docker.io/chrislusf/seaweedfs:4.48_large_disk'
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

const UID = 1000;
const S3_PORT = 8333;

/**
 * A single-node SeaweedFS (Apache-2.0, maintained): master, volume server, filer and S3 gateway in
 * one `weed server` process, one PersistentVolumeClaim, and a Service for the S3 API. The S3
 * credentials from the Secret become its admin identity.
 */
export class Seaweedfs extends Construct implements InClusterS3Server {
  /** The S3 endpoint inside the cluster, with scheme. */
  public readonly endpointUrl: string;
  /** The S3 port. */
  public readonly port = S3_PORT;
  public readonly displayName = 'SeaweedFS in the cluster';
  /** SeaweedFS's pods. */
  public readonly part: InClusterPart;

  public constructor(scope: Construct, id: string, context: StackContext, options: SeaweedfsOptions) {
    super(scope, id);
    const image = options.image ?? defaultImage(context, DefaultImages.SEAWEEDFS);
    const labels = partLabels(context, 'seaweedfs', 'artifact-store', imageVersion(image));
    const fromSecret = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: context.secret.name, key } } });
    const health: k8s.Probe = { httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('s3') }, timeoutSeconds: 5 };
    const store = new SinglePodStore(this, 'store', {
      context,
      labels,
      name: `${context.instance}-seaweedfs`,
      ports: [{ name: 's3', port: S3_PORT }],
      headless: false,
      uid: UID,
      containerName: 'seaweedfs',
      container: {
        image,
        // The image's entrypoint changes owners as root; under the restricted profile weed runs directly.
        command: ['/usr/bin/weed'],
        args: [
          '-logtostderr=true', 'server', '-dir=/data', '-ip=127.0.0.1', '-ip.bind=0.0.0.0',
          '-s3', `-s3.port=${S3_PORT}`, '-s3.port.iceberg=0', '-s3.port.lance=0',
          '-master.volumeSizeLimitMB=1024', '-volume.max=0',
        ],
        env: [
          fromSecret('AWS_ACCESS_KEY_ID', SecretKeys.AWS_ACCESS_KEY_ID),
          fromSecret('AWS_SECRET_ACCESS_KEY', SecretKeys.AWS_SECRET_ACCESS_KEY),
          { name: 'HOME', value: '/tmp' },
        ],
        // A restart on existing data waits for its own raft election: about 20 s.
        startupProbe: { ...health, periodSeconds: 5, failureThreshold: 60 },
        readinessProbe: { ...health, periodSeconds: 10, failureThreshold: 3 },
        livenessProbe: { ...health, periodSeconds: 20, failureThreshold: 6 },
        // weed keeps its unix sockets in /tmp, whatever TMPDIR says.
        volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' }],
      },
      resources: options.resources ?? resources(250, 512, 2000, 2048),
      volumes: [{ name: 'tmp', emptyDir: {} }],
      storage: options.storage ?? Size.gibibytes(20),
      storageClassName: options.storageClassName,
      storageClassProp: 'artifactStore.seaweedfs.storageClassName',
      // Stopping flushes volumes for about 25 s.
      terminationGracePeriodSeconds: 60,
      pods: partPods(context, options.pods, 'artifactStore.seaweedfs.pods'),
    });
    this.endpointUrl = `http://${store.host}:${S3_PORT}`;
    this.part = { labels, name: 'seaweedfs', statefulSet: store.statefulSet };
  }
}
