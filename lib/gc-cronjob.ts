import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStoreConnection } from './artifact-store';
import { PartLabels } from './labels';
import { resources } from './resources';
import { s3Env } from './s3-env';
import { SecretKeys } from './secret-keys';
import { restrictedContainer } from './security';
import { maintenanceCronJobProps } from './maintenance-cronjob';
import { inServerForm } from './server-form';
import { StoreContext } from './store-context';
import { ConfigError } from './errors';

/** Permanent deletion of runs that were deleted (moved to the trash) long enough ago: `mlflow gc`. */
export interface GarbageCollectionOptions {
  /**
   * When to run, as a cron schedule.
   * @default '30 3 * * *'
   */
  readonly schedule?: string;
  /**
   * Only runs deleted at least this long ago are removed, with their artifacts.
   * @default Duration.days(30)
   */
  readonly olderThan?: Duration;
}

export interface GarbageCollectionProps extends GarbageCollectionOptions {
  /** The stack the CronJob belongs to. */
  readonly context: StoreContext;
  /** The Secret with the keys in `SecretKeys`. */
  readonly secret: kplus.ISecret;
  /** The CronJob's labels. */
  readonly labels: PartLabels;
  /** The MLflow image (the server's). */
  readonly image: string;
  /** The server's in-cluster URI: proxied artifacts are deleted through it. */
  readonly trackingUri: string;
  /** How to reach the artifact store (direct-mode artifacts are deleted there). */
  readonly artifactStore: ArtifactStoreConnection;
  /** Basic auth is on: the job signs in as the admin. */
  readonly auth: boolean;
}

const MLFLOW_UID = 1000;
const GC_RESOURCES = resources(100, 256, 1000, 1024);
const TEMPLATE = '/spec/jobTemplate/spec/template';
const GC_SCRIPT = 'exec mlflow gc --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" --older-than "$MLFLOW_GC_OLDER_THAN"';

/** `mlflow gc` as a CronJob that never overlaps itself. */
export class GarbageCollection extends Construct {
  public constructor(scope: Construct, id: string, props: GarbageCollectionProps) {
    super(scope, id);
    const { context, secret } = props;
    const olderThan = props.olderThan ?? Duration.days(30);
    const seconds = olderThan.toSeconds();
    if (!Number.isInteger(seconds) || seconds < 1) {
      throw new ConfigError(`garbageCollection.olderThan must be a whole number of seconds, at least 1; got ${seconds}s`);
    }
    const fromSecret = (key: string) => kplus.EnvValue.fromSecretValue({ secret, key });
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');
    const cronJob = new kplus.CronJob(this, 'cronjob', {
      ...maintenanceCronJobProps(
        { name: `${context.instance}-gc`, namespace: context.namespace, labels: props.labels.all },
        props.schedule ?? '30 3 * * *',
        'garbageCollection.schedule',
        MLFLOW_UID,
      ),
      containers: [{
        name: 'gc',
        image: props.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', GC_SCRIPT],
        envVariables: {
          MLFLOW_BACKEND_STORE_URI: fromSecret(SecretKeys.MLFLOW_BACKEND_STORE_URI),
          MLFLOW_ARTIFACTS_DESTINATION: fromSecret(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
          MLFLOW_TRACKING_URI: kplus.EnvValue.fromValue(props.trackingUri),
          MLFLOW_GC_OLDER_THAN: kplus.EnvValue.fromValue(seconds % 86400 === 0 ? `${seconds / 86400}d` : `${seconds}s`),
          ...s3Env(secret, props.artifactStore),
          ...(props.auth ? {
            MLFLOW_TRACKING_USERNAME: fromSecret(SecretKeys.MLFLOW_TRACKING_USERNAME),
            MLFLOW_TRACKING_PASSWORD: fromSecret(SecretKeys.MLFLOW_TRACKING_PASSWORD),
          } : {}),
          HOME: kplus.EnvValue.fromValue('/tmp'),
        },
        securityContext: restrictedContainer(MLFLOW_UID),
        resources: GC_RESOURCES,
        volumeMounts: [{ path: '/tmp', volume: tmp }],
      }],
    });
    for (const [key, value] of Object.entries(props.labels.all)) cronJob.podMetadata.addLabel(key, value);
    inServerForm(cronJob, TEMPLATE, [{ path: `${TEMPLATE}/spec/containers/0`, resources: GC_RESOURCES }]);
  }
}
