import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { SecretKeys } from '../credentials/secret-keys';
import { partLabels, partPods, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { imageVersion, PartLabels } from '../kit/labels';
import { PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { restrictedContainer } from '../kit/security';
import { launcherProgram } from '../server/programs';
import { TrackingServer } from '../server/tracking-server';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { ScheduledJob } from './scheduled-job';

/** Permanent deletion of runs that were deleted (moved to the trash) long enough ago: `mlflow gc`. */
export interface GarbageCollectionOptions {
  /**
   * Turn garbage collection on or off.
   * @default - on when `garbageCollection` is given
   */
  readonly enabled?: boolean;
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
  /**
   * Pod settings of its pods, over the stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
}

export interface GarbageCollectionProps extends GarbageCollectionOptions {
  readonly context: StackContext;
  /** The tracking server: its image runs gc, and proxied artifacts are deleted through it. */
  readonly server: TrackingServer;
  /** How to reach the artifact store (direct-mode artifacts are deleted there). */
  readonly artifactStore: ArtifactStoreConnection;
  /** Basic auth is on: the job signs in as the admin. */
  readonly auth: boolean;
}

const MLFLOW_UID = 1000;
const GC_SCRIPT = 'exec mlflow gc --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" --older-than "$MLFLOW_GC_OLDER_THAN"';

/** `mlflow gc` as a CronJob that never overlaps itself. */
export class GarbageCollection extends Construct {
  /** The job's labels; the selector picks its pods. */
  public readonly labels: PartLabels;
  /** The CronJob. */
  public readonly job: ScheduledJob;
  /** The CronJob. */
  public readonly cronJob: kplus.CronJob;

  public constructor(scope: Construct, id: string, props: GarbageCollectionProps) {
    super(scope, id);
    const { context, server } = props;
    const { secret } = context;
    const seconds = (props.olderThan ?? Duration.days(30)).toSeconds();
    if (!Number.isInteger(seconds) || seconds < 1) {
      throw new ConfigError(`garbageCollection.olderThan must be a whole number of seconds, at least 1; got ${seconds}s`, 'garbageCollection.olderThan');
    }
    this.labels = partLabels(context, 'mlflow', 'garbage-collection', imageVersion(server.image));
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');
    this.job = new ScheduledJob(this, 'job', {
      context,
      part: 'gc',
      pods: partPods(context, props.pods, 'garbageCollection.pods'),
      labels: this.labels,
      schedule: props.schedule ?? '30 3 * * *',
      scheduleProp: 'garbageCollection.schedule',
      uid: MLFLOW_UID,
      containers: [{
        name: 'gc',
        image: server.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        // Under the launcher, so a schema migration waits for it (and stops it) like a server.
        command: ['python', '-c', launcherProgram(), '/bin/sh', '-c', GC_SCRIPT],
        envVariables: {
          MLFLOW_BACKEND_STORE_URI: secret.envValue(SecretKeys.MLFLOW_BACKEND_STORE_URI),
          MLFLOW_ARTIFACTS_DESTINATION: secret.envValue(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
          MLFLOW_TRACKING_URI: kplus.EnvValue.fromValue(server.trackingUri),
          MLFLOW_GC_OLDER_THAN: kplus.EnvValue.fromValue(seconds % 86400 === 0 ? `${seconds / 86400}d` : `${seconds}s`),
          ...props.artifactStore.clientEnv(secret),
          ...(props.auth ? {
            MLFLOW_TRACKING_USERNAME: secret.envValue(SecretKeys.MLFLOW_TRACKING_USERNAME),
            MLFLOW_TRACKING_PASSWORD: secret.envValue(SecretKeys.MLFLOW_TRACKING_PASSWORD),
          } : {}),
          HOME: kplus.EnvValue.fromValue('/tmp'),
          ...server.commonEnv,
        },
        securityContext: restrictedContainer(MLFLOW_UID),
        resources: resources(100, 256, 1000, 1024),
        volumeMounts: [{ path: '/tmp', volume: tmp }],
      }],
    });
    this.cronJob = this.job.cronJob;
  }
}
