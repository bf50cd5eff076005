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

/** Options for PostgreSQL inside the cluster. */
export interface PostgresOptions {
  /**
   * PostgreSQL image (Debian-based official image, major version 17 or earlier: the data directory
   * layout changed in 18).
   * @default 'docker.io/library/postgres:17.7-bookworm'
   */
  readonly image?: string;
  /**
   * Size of the data volume.
   * @default Size.gibibytes(10)
   */
  readonly storage?: Size;
  /**
   * StorageClass of the data volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * CPU and memory. PostgreSQL's own defaults (shared_buffers 128MB) fit the default.
   * @default - requests 250m CPU / 256Mi, limits 2 CPU / 1Gi
   */
  readonly resources?: kplus.ContainerResources;
}

/** The UID of the `postgres` user in the Debian-based image. */
const POSTGRES_UID = 999;
const PORT = 5432;
/** The volume holds the data directory in a subdirectory, so a `lost+found` at the root cannot break initdb. */
const DATA_MOUNT = '/var/lib/postgresql';
const PGDATA = `${DATA_MOUNT}/data`;

export interface PostgresProps extends PostgresOptions {
  /** The stack this database belongs to. */
  readonly context: StoreContext;
}

/** A single PostgreSQL server: a StatefulSet with one PersistentVolumeClaim and a headless Service. */
export class Postgres extends Construct {
  /** The Service (and StatefulSet) name. */
  public readonly serviceName: string;
  /** In-cluster host name of the server. */
  public readonly host: string;
  /** TCP port. */
  public readonly port = PORT;
  /** Labels that select the server's pod. */
  public readonly selector: { [key: string]: string };
  /** The PostgreSQL image. */
  public readonly image: string;

  public constructor(scope: Construct, id: string, props: PostgresProps) {
    super(scope, id);
    const { context } = props;
    const image = props.image ?? DefaultImages.POSTGRES;
    this.image = image;
    const labels = partLabels(context.instance, 'postgresql', 'backend-store', imageVersion(image));
    this.serviceName = `${context.instance}-postgres`;
    this.host = serviceHost(context, this.serviceName);
    this.selector = labels.selector;
    const metadata = { name: this.serviceName, namespace: context.namespace, labels: labels.all };
    if (props.storageClassName !== undefined) checkDnsSubdomain(props.storageClassName, 'BackendStore.postgres({ storageClassName })');

    new k8s.KubeService(this, 'service', {
      metadata,
      spec: {
        clusterIp: 'None',
        selector: labels.selector,
        ports: [{ name: 'postgres', port: PORT, targetPort: k8s.IntOrString.fromString('postgres') }],
      },
    });

    const fromSecret = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: context.secretName, key } } });
    // As the configured user: pg_isready's default role (the OS user, postgres) may not exist,
    // and each probe would log a FATAL line. The shell reads the Secret-fed env at probe time.
    const isReady: k8s.Probe = {
      exec: { command: ['/bin/sh', '-c', `exec pg_isready --host=127.0.0.1 --port=${PORT} --timeout=3 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB"`] },
    };

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
            securityContext: restrictedPodSpec(POSTGRES_UID),
            enableServiceLinks: false,
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 60,
            containers: [{
              name: 'postgres',
              image,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'postgres', containerPort: PORT }],
              env: [
                fromSecret('POSTGRES_USER', SecretKeys.POSTGRES_USER),
                fromSecret('POSTGRES_PASSWORD', SecretKeys.POSTGRES_PASSWORD),
                fromSecret('POSTGRES_DB', SecretKeys.POSTGRES_DB),
                { name: 'PGDATA', value: PGDATA },
              ],
              securityContext: restrictedContainerSpec(POSTGRES_UID),
              resources: canonicalResources(props.resources ?? resources(250, 256, 2000, 1024)),
              // initdb on a fresh volume runs a socket-only server first: the TCP check passes only once the real one listens.
              startupProbe: { ...isReady, periodSeconds: 5, failureThreshold: 120, timeoutSeconds: 5 },
              readinessProbe: { ...isReady, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 },
              livenessProbe: { ...isReady, periodSeconds: 20, failureThreshold: 6, timeoutSeconds: 5 },
              volumeMounts: [
                { name: 'data', mountPath: DATA_MOUNT },
                { name: 'run', mountPath: '/var/run/postgresql' },
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'shm', mountPath: '/dev/shm' },
              ],
            }],
            volumes: [
              { name: 'run', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
              { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('256Mi') } },
            ],
          },
        },
        volumeClaimTemplates: [{
          // Claim templates are immutable: only labels that never change belong here.
          metadata: { name: 'data', labels: labels.selector },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(canonicalSize(props.storage ?? Size.gibibytes(10))) } },
          },
        }],
      },
    });
  }
}
