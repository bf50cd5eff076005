import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStoreConnection } from './artifact-store';
import { BackendStoreConnection } from './backend-store';
import { ConfigError } from './errors';
import { DefaultImages } from './images';
import { PartLabels } from './labels';
import { resources } from './resources';
import { s3Env } from './s3-env';
import { BACKUP_DUMP_SCRIPT, BACKUP_UPLOAD_SCRIPT } from './s3-scripts';
import { SecretKeys } from './secret-keys';
import { restrictedContainer } from './security';
import { maintenanceCronJobProps } from './maintenance-cronjob';
import { inServerForm } from './server-form';
import { StoreContext } from './store-context';

/** Scheduled `pg_dump` of the database into the artifact bucket. */
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
   * How long backups are kept; older ones are removed after each backup.
   * @default Duration.days(14)
   */
  readonly retention?: Duration;
  /**
   * Key prefix of the backups inside the artifact bucket.
   * @default 'backups/postgres'
   */
  readonly prefix?: string;
  /**
   * PostgreSQL client image for `pg_dump`; its major version must be at least the server's.
   * @default - the in-cluster PostgreSQL image
   */
  readonly image?: string;
  /**
   * MinIO client image for the upload.
   * @default 'quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z'
   */
  readonly clientImage?: string;
}

export interface DatabaseBackupProps extends BackupOptions {
  /** The stack the CronJob belongs to. */
  readonly context: StoreContext;
  /** The Secret with the keys in `SecretKeys`. */
  readonly secret: kplus.ISecret;
  /** The CronJob's labels. */
  readonly labels: PartLabels;
  /** How to reach the database. */
  readonly backendStore: BackendStoreConnection;
  /** How to reach the artifact store. */
  readonly artifactStore: ArtifactStoreConnection;
}

const POSTGRES_UID = 999;
const MC_UID = 1000;
const DUMP_RESOURCES = resources(100, 128, 1000, 512);
const UPLOAD_RESOURCES = resources(50, 64, 500, 256);
const TEMPLATE = '/spec/jobTemplate/spec/template';

/**
 * A CronJob whose pod dumps the database (init container, PostgreSQL image) to a scratch volume,
 * then uploads the dump next to the artifacts and prunes old ones (`mc` image). Never overlaps.
 */
export class DatabaseBackup extends Construct {
  public constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const { context, secret } = props;
    const retentionDays = (props.retention ?? Duration.days(14)).toSeconds() / 86400;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new ConfigError(`backup.retention must be a whole number of days, at least 1; got ${retentionDays}`);
    }
    const prefix = props.prefix ?? 'backups/postgres';
    if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]*[A-Za-z0-9]$/.test(prefix) || prefix.includes('//')) {
      throw new ConfigError(`backup.prefix must be an S3 key prefix of letters, digits, '.', '_', '-' and '/', without leading or trailing '/'; got ${JSON.stringify(prefix)}`);
    }
    const fromSecret = (key: string) => kplus.EnvValue.fromSecretValue({ secret, key });
    const scratch = kplus.Volume.fromEmptyDir(this, 'backup', 'backup');
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');
    const cronJob = new kplus.CronJob(this, 'cronjob', {
      ...maintenanceCronJobProps(
        { name: `${context.instance}-backup`, namespace: context.namespace, labels: props.labels.all },
        props.schedule ?? '0 2 * * *',
        'backup.schedule',
        MC_UID,
      ),
      initContainers: [{
        name: 'dump',
        image: props.image ?? DefaultImages.POSTGRES,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', BACKUP_DUMP_SCRIPT],
        envVariables: {
          PGHOST: kplus.EnvValue.fromValue(props.backendStore.host),
          PGPORT: kplus.EnvValue.fromValue(String(props.backendStore.port)),
          PGUSER: fromSecret(SecretKeys.POSTGRES_USER),
          PGPASSWORD: fromSecret(SecretKeys.POSTGRES_PASSWORD),
          PGDATABASE: fromSecret(SecretKeys.POSTGRES_DB),
          PGCONNECT_TIMEOUT: kplus.EnvValue.fromValue('30'),
        },
        securityContext: restrictedContainer(POSTGRES_UID),
        resources: DUMP_RESOURCES,
        volumeMounts: [{ path: '/backup', volume: scratch }, { path: '/tmp', volume: tmp }],
      }],
      containers: [{
        name: 'upload',
        image: props.clientImage ?? DefaultImages.MINIO_CLIENT,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', BACKUP_UPLOAD_SCRIPT],
        envVariables: {
          ...s3Env(secret, props.artifactStore),
          MLFLOW_S3_ARTIFACT_ROOT: fromSecret(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
          BACKUP_PREFIX: kplus.EnvValue.fromValue(prefix),
          BACKUP_RETENTION_DAYS: kplus.EnvValue.fromValue(String(retentionDays)),
          MC_CONFIG_DIR: kplus.EnvValue.fromValue('/tmp/.mc'),
          HOME: kplus.EnvValue.fromValue('/tmp'),
        },
        securityContext: restrictedContainer(MC_UID),
        resources: UPLOAD_RESOURCES,
        volumeMounts: [{ path: '/backup', volume: scratch, readOnly: true }, { path: '/tmp', volume: tmp }],
      }],
    });
    for (const [key, value] of Object.entries(props.labels.all)) cronJob.podMetadata.addLabel(key, value);
    inServerForm(cronJob, TEMPLATE, [
      { path: `${TEMPLATE}/spec/initContainers/0`, resources: DUMP_RESOURCES },
      { path: `${TEMPLATE}/spec/containers/0`, resources: UPLOAD_RESOURCES },
    ]);
  }
}
