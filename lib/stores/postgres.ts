import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { defaultImage, partLabels, partPods, StackContext } from '../kit/context';
import { DefaultImages } from '../kit/images';
import { imageVersion, PartLabels } from '../kit/labels';
import { PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { POSTGRES_UID } from './pg-dump';
import { SinglePodStore } from './single-pod-store';

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
  /**
   * Pod settings of its pod, over the stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
}

const PORT = 5432;
/** The volume holds the data directory in a subdirectory, so a `lost+found` at the root cannot break initdb. */
const DATA_MOUNT = '/var/lib/postgresql';
const PGDATA = `${DATA_MOUNT}/data`;

/** A single PostgreSQL server: a StatefulSet with one PersistentVolumeClaim and a headless Service. */
export class Postgres extends Construct {
  /** In-cluster host name of the server. */
  public readonly host: string;
  /** TCP port. */
  public readonly port = PORT;
  /** The server's labels; the selector picks its pod. */
  public readonly labels: PartLabels;
  /** The PostgreSQL image. */
  public readonly image: string;
  /** The StatefulSet. */
  public readonly statefulSet: k8s.KubeStatefulSet;

  public constructor(scope: Construct, id: string, context: StackContext, options: PostgresOptions) {
    super(scope, id);
    this.image = options.image ?? defaultImage(context, DefaultImages.POSTGRES);
    this.labels = partLabels(context, 'postgresql', 'backend-store', imageVersion(this.image));
    const fromSecret = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: context.secret.name, key } } });
    // As the configured user: pg_isready's default role (the OS user, postgres) may not exist,
    // and each probe would log a FATAL line. The shell reads the Secret-fed env at probe time.
    const isReady: k8s.Probe = {
      exec: { command: ['/bin/sh', '-c', `exec pg_isready --host=127.0.0.1 --port=${PORT} --timeout=3 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB"`] },
    };
    const store = new SinglePodStore(this, 'store', {
      context,
      labels: this.labels,
      name: `${context.instance}-postgres`,
      ports: [{ name: 'postgres', port: PORT }],
      headless: true,
      uid: POSTGRES_UID,
      containerName: 'postgres',
      container: {
        image: this.image,
        env: [
          fromSecret('POSTGRES_USER', SecretKeys.POSTGRES_USER),
          fromSecret('POSTGRES_PASSWORD', SecretKeys.POSTGRES_PASSWORD),
          fromSecret('POSTGRES_DB', SecretKeys.POSTGRES_DB),
          { name: 'PGDATA', value: PGDATA },
        ],
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
      },
      resources: options.resources ?? resources(250, 256, 2000, 1024),
      volumes: [
        { name: 'run', emptyDir: {} },
        { name: 'tmp', emptyDir: {} },
        { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('256Mi') } },
      ],
      storage: options.storage ?? Size.gibibytes(10),
      storageClassName: options.storageClassName,
      storageClassProp: 'backendStore.postgres.storageClassName',
      terminationGracePeriodSeconds: 60,
      pods: partPods(context, options.pods, 'backendStore.postgres.pods'),
    });
    this.host = store.host;
    this.statefulSet = store.statefulSet;
  }
}
