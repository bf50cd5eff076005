import { Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { partLabels, partPods, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { imageVersion, PartLabels } from '../kit/labels';
import { PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { restrictedContainer } from '../kit/security';
import { parseS3Uri } from '../kit/validate';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { BackendStoreConnection } from '../stores/backend-store';
import { BucketJob } from './bucket-job';
import { BACKUP_PIPE, BACKUP_STATUS, BACKUP_UPLOAD_SCRIPT } from './s3-scripts';
import { ScheduledJob } from './scheduled-job';

/**
 * Scheduled dumps of the database (`pg_dump` for PostgreSQL) into S3, beside the artifacts, never
 * inside the served artifact root. A database the stack cannot dump (MySQL, MariaDB) is refused.
 */
export interface BackupOptions {
  /**
   * Turn backups on or off.
   * @default - on with the in-cluster PostgreSQL, off with an external database (back it up where it runs)
   */
  readonly enabled?: boolean;
  /**
   * When to run, as a cron schedule.
   * @default '0 2 * * *'
   */
  readonly schedule?: string;
  /**
   * How long backups are kept; older ones are removed after each backup. Whole days.
   * @default Duration.days(14)
   */
  readonly retention?: Duration;
  /**
   * Bucket of the backups; it is created when missing. A bucket of its own keeps the dumps away from
   * anyone who can read artifacts.
   * @default - the artifact bucket
   */
  readonly bucket?: string;
  /**
   * Key prefix of the backups; each is `<prefix>/<name>-<UTC time>.dump`. In the artifact bucket it
   * must lie outside the artifact root, which the tracking server serves to every client: a bucket
   * root (`s3://mlflow`) as artifact root therefore needs `bucket`.
   * @default 'backups/<namespace>/<name>' (one per installation)
   */
  readonly prefix?: string;
  /**
   * Image of the dump program (PostgreSQL's `pg_dump`: its major version must be at least the server's).
   * @default - the in-cluster PostgreSQL's image, else DefaultImages.POSTGRES
   */
  readonly image?: string;
  /**
   * MinIO client image for the upload.
   * @default - the bucket Job's image (`bucketJob.image`, by default DefaultImages.MINIO_CLIENT)
   */
  readonly clientImage?: string;
  /**
   * Pod settings of its pods, over the stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
}

export interface DatabaseBackupProps extends BackupOptions {
  readonly context: StackContext;
  /** The artifact root, when the stack knows it (not with an existing Secret): the synth then refuses a backup location inside it. */
  readonly artifactRoot?: string;
  readonly backendStore: BackendStoreConnection;
  readonly artifactStore: ArtifactStoreConnection;
  /** The bucket Job, whose `mc` image does the upload unless `clientImage` says otherwise. */
  readonly bucketJob: BucketJob;
}

const MC_UID = 1000;

/**
 * A CronJob whose pod streams the store's dump (`pg_dump` in the PostgreSQL image) through a named pipe to an `mc pipe`
 * upload (`mc` image), keeps the dump only when it is complete, and prunes old ones. The pipe's
 * volume is capped small: no copy of the database is kept on the node. Never overlaps.
 */
export class DatabaseBackup extends Construct {
  /** The job's labels; the selector picks its pods. */
  public readonly labels: PartLabels;
  /** The CronJob. */
  public readonly job: ScheduledJob;
  /** The CronJob. */
  public readonly cronJob: kplus.CronJob;

  public constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const { context, backendStore } = props;
    const { secret } = context;
    const dump = backendStore.dump;
    if (!dump) {
      throw new ConfigError(`backup.enabled: the stack cannot dump ${backendStore.displayName} (it dumps PostgreSQL only); back the database up where it runs and set backup.enabled to false`, 'backup.enabled');
    }
    const retentionDays = (props.retention ?? Duration.days(14)).toSeconds() / 86400;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new ConfigError(`backup.retention must be a whole number of days, at least 1; got ${retentionDays}`, 'backup.retention');
    }
    const prefix = props.prefix ?? `backups/${context.namespace}/${context.instance}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]*[A-Za-z0-9]$/.test(prefix) || prefix.includes('//')) {
      throw new ConfigError(`backup.prefix must be an S3 key prefix of letters, digits, '.', '_', '-' and '/', without leading or trailing '/'; got ${JSON.stringify(prefix)}`, 'backup.prefix');
    }
    if (props.bucket !== undefined) parseS3Uri(`s3://${props.bucket}`, 'backup.bucket');
    if (props.artifactRoot !== undefined) checkOutsideArtifactRoot(props.artifactRoot, props.bucket, prefix);
    const image = props.image ?? dump.image;
    this.labels = partLabels(context, dump.appName, 'backup', imageVersion(image));
    // Only the pipe and a status word live here; the cap makes any copy of the dump fail, not fill the node.
    const scratch = kplus.Volume.fromEmptyDir(this, 'backup', 'backup', { sizeLimit: Size.mebibytes(16) });
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');
    this.job = new ScheduledJob(this, 'job', {
      context,
      part: 'backup',
      pods: partPods(context, props.pods, 'backup.pods'),
      labels: this.labels,
      schedule: props.schedule ?? '0 2 * * *',
      scheduleProp: 'backup.schedule',
      uid: MC_UID,
      containers: [{
        name: 'dump',
        image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', dump.script(BACKUP_PIPE, BACKUP_STATUS)],
        envVariables: dump.env(secret),
        securityContext: restrictedContainer(dump.uid),
        resources: resources(100, 128, 1000, 512),
        volumeMounts: [{ path: '/backup', volume: scratch }, { path: '/tmp', volume: tmp }],
      }, {
        name: 'upload',
        image: props.clientImage ?? props.bucketJob.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', BACKUP_UPLOAD_SCRIPT],
        envVariables: {
          ...props.artifactStore.clientEnv(secret),
          MLFLOW_S3_ARTIFACT_ROOT: secret.envValue(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
          ...(props.bucket !== undefined ? { BACKUP_BUCKET: kplus.EnvValue.fromValue(props.bucket) } : {}),
          BACKUP_PREFIX: kplus.EnvValue.fromValue(prefix),
          BACKUP_NAME: kplus.EnvValue.fromValue(context.instance),
          BACKUP_RETENTION_DAYS: kplus.EnvValue.fromValue(String(retentionDays)),
          MC_CONFIG_DIR: kplus.EnvValue.fromValue('/tmp/.mc'),
          HOME: kplus.EnvValue.fromValue('/tmp'),
        },
        securityContext: restrictedContainer(MC_UID),
        resources: resources(50, 64, 500, 256),
        volumeMounts: [{ path: '/backup', volume: scratch }, { path: '/tmp', volume: tmp }],
      }],
    });
    this.cronJob = this.job.cronJob;
  }
}

/** A backup the tracking server would serve to every client (the artifact proxy lists and downloads under the root) is refused. */
function checkOutsideArtifactRoot(artifactRoot: string, bucket: string | undefined, prefix: string): void {
  const root = parseS3Uri(artifactRoot, 'MLFLOW_S3_ARTIFACT_ROOT');
  if (bucket !== undefined && bucket !== root.bucket) return;
  if (root.prefix === '' || `${prefix}/`.startsWith(`${root.prefix}/`)) {
    throw new ConfigError(
      `backup: s3://${root.bucket}/${prefix}/ is inside the artifact root ${artifactRoot}, which the tracking server serves to every client; ` +
      `set backup.bucket to another bucket${root.prefix === '' ? ', or MLFLOW_S3_ARTIFACT_ROOT to a prefix such as s3://' + root.bucket + '/artifacts' : ' or backup.prefix outside ' + root.prefix + '/'}`,
      ['backup.prefix', 'backup.bucket', 'backup'],
    );
  }
}
