import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { DefaultImages } from './images';
import { imageVersion, partLabels } from './labels';
import { resources } from './resources';
import { canonicalResources, canonicalSize, statefulSetInServerForm } from './server-form';
import { SecretKeys } from './secret-keys';
import { restrictedContainerSpec, restrictedPodSpec } from './security';
import { serviceHost, StoreContext } from './store-context';
import { checkDnsSubdomain } from './validate';

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
}

export interface MinioProps extends MinioOptions {
  /** The stack this MinIO belongs to. */
  readonly context: StoreContext;
}

const MINIO_UID = 1000;
const API_PORT = 9000;
const CONSOLE_PORT = 9001;

/** A single-node MinIO server: a StatefulSet with one PersistentVolumeClaim and a Service for the S3 API and console. */
export class Minio extends Construct {
  /** The Service (and StatefulSet) name. */
  public readonly serviceName: string;
  /** The S3 endpoint inside the cluster, with scheme. */
  public readonly endpointUrl: string;
  /** Labels that select the MinIO pod. */
  public readonly selector: { [key: string]: string };

  public constructor(scope: Construct, id: string, props: MinioProps) {
    super(scope, id);
    const { context } = props;
    const image = props.image ?? DefaultImages.MINIO;
    const labels = partLabels(context.instance, 'minio', 'artifact-store', imageVersion(image));
    this.serviceName = `${context.instance}-minio`;
    this.endpointUrl = `http://${serviceHost(context, this.serviceName)}:${API_PORT}`;
    this.selector = labels.selector;
    const metadata = { name: this.serviceName, namespace: context.namespace, labels: labels.all };
    if (props.storageClassName !== undefined) checkDnsSubdomain(props.storageClassName, 'ArtifactStore.minio({ storageClassName })');

    new k8s.KubeService(this, 'service', {
      metadata,
      spec: {
        type: 'ClusterIP',
        selector: labels.selector,
        ports: [
          { name: 's3', port: API_PORT, targetPort: k8s.IntOrString.fromString('s3') },
          { name: 'console', port: CONSOLE_PORT, targetPort: k8s.IntOrString.fromString('console') },
        ],
      },
    });

    const fromSecret = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: context.secretName, key } } });
    const httpGet = (path: string): k8s.Probe => ({ httpGet: { path, port: k8s.IntOrString.fromString('s3') }, timeoutSeconds: 5 });

    statefulSetInServerForm(this, 'statefulset', {
      metadata,
      spec: {
        serviceName: this.serviceName,
        replicas: 1,
        selector: { matchLabels: labels.selector },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: { labels: labels.all },
          spec: {
            securityContext: restrictedPodSpec(MINIO_UID),
            enableServiceLinks: false,
            automountServiceAccountToken: false,
            containers: [{
              name: 'minio',
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['minio'],
              args: ['server', '/data', '--address', `:${API_PORT}`, '--console-address', `:${CONSOLE_PORT}`, '--certs-dir', '/tmp/certs'],
              ports: [{ name: 's3', containerPort: API_PORT }, { name: 'console', containerPort: CONSOLE_PORT }],
              env: [
                fromSecret('MINIO_ROOT_USER', SecretKeys.AWS_ACCESS_KEY_ID),
                fromSecret('MINIO_ROOT_PASSWORD', SecretKeys.AWS_SECRET_ACCESS_KEY),
                { name: 'HOME', value: '/tmp' },
                { name: 'MINIO_UPDATE', value: 'off' },
              ],
              securityContext: restrictedContainerSpec(MINIO_UID),
              resources: canonicalResources(props.resources ?? resources(250, 512, 2000, 2048)),
              startupProbe: { ...httpGet('/minio/health/live'), periodSeconds: 5, failureThreshold: 60 },
              readinessProbe: { ...httpGet('/minio/health/ready'), periodSeconds: 10, failureThreshold: 3 },
              livenessProbe: { ...httpGet('/minio/health/live'), periodSeconds: 20, failureThreshold: 6 },
              volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: {} }],
          },
        },
        volumeClaimTemplates: [{
          // Claim templates are immutable: only labels that never change belong here.
          metadata: { name: 'data', labels: labels.selector },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(canonicalSize(props.storage ?? Size.gibibytes(20))) } },
          },
        }],
      },
    });
  }
}
