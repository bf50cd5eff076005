import { createHash } from 'crypto';
import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStoreConnection } from './artifact-store';
import { BUCKET_SCRIPT } from './s3-scripts';
import { DefaultImages } from './images';
import { imageVersion, partLabels } from './labels';
import { resources } from './resources';
import { s3Env } from './s3-env';
import { SecretKeys } from './secret-keys';
import { inServerForm } from './server-form';
import { restrictedContainer, restrictedPod } from './security';
import { StoreContext } from './store-context';
import { checkIntegerInRange } from './validate';

/** Options for the Job that creates the artifact bucket. */
export interface BucketJobOptions {
  /**
   * MinIO client image (its entrypoint is `mc`).
   * @default 'quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z'
   */
  readonly image?: string;
  /**
   * How long the Job waits for the S3 endpoint before the attempt fails.
   * @default Duration.minutes(5)
   */
  readonly waitTimeout?: Duration;
}

export interface BucketJobProps extends BucketJobOptions {
  /** The stack this Job belongs to. */
  readonly context: StoreContext;
  /** The Secret with the keys in `SecretKeys`. */
  readonly secret: kplus.ISecret;
  /** Where the bucket lives. */
  readonly artifactStore: ArtifactStoreConnection;
  /**
   * Non-secret settings from the Secret (artifact root, endpoint, region) whose change must rerun the Job.
   * @default - none known (an existing Secret)
   */
  readonly settingsRevision?: string;
}

const MC_UID = 1000;
const MC_RESOURCES = resources(50, 64, 500, 256);

/**
 * A Job that makes the artifact bucket exist. A Job's pod template is immutable, so the name ends
 * in a hash of everything that shapes the pod: a changed Job is a new Job, and re-applying an
 * unchanged one changes nothing.
 */
export class BucketJob extends Construct {
  /** The Job's name, `<instance>-bucket-<hash>`. */
  public readonly jobName: string;
  /** Labels that select the Job's pods. */
  public readonly podSelector: { [key: string]: string };

  public constructor(scope: Construct, id: string, props: BucketJobProps) {
    super(scope, id);
    const { context } = props;
    const image = props.image ?? DefaultImages.MINIO_CLIENT;
    const waitSeconds = checkIntegerInRange((props.waitTimeout ?? Duration.minutes(5)).toSeconds(), 'bucketJob.waitTimeout (seconds)', 5, 3600);
    const labels = partLabels(context.instance, 'mlflow', 'bucket-job', imageVersion(image));
    this.podSelector = labels.selector;
    const env = {
      ...s3Env(props.secret, props.artifactStore),
      MLFLOW_S3_ARTIFACT_ROOT: kplus.EnvValue.fromSecretValue({ secret: props.secret, key: SecretKeys.MLFLOW_S3_ARTIFACT_ROOT }),
    };
    const fingerprint = JSON.stringify([image, waitSeconds, BUCKET_SCRIPT, context, props.artifactStore, Object.keys(env), props.settingsRevision ?? '']);
    this.jobName = `${context.instance}-bucket-${createHash('sha256').update(fingerprint).digest('hex').slice(0, 8)}`;
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');

    const job = new kplus.Job(this, 'job', {
      metadata: { name: this.jobName, namespace: context.namespace, labels: labels.all },
      backoffLimit: 6,
      activeDeadline: Duration.minutes(30),
      // Keeps a day of logs, then goes, so old hashes do not pile up.
      ttlAfterFinished: Duration.days(1),
      restartPolicy: kplus.RestartPolicy.NEVER,
      securityContext: restrictedPod(MC_UID),
      automountServiceAccountToken: false,
      containers: [{
        name: 'mc',
        image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', BUCKET_SCRIPT],
        envVariables: {
          ...env,
          BUCKET_WAIT_SECONDS: kplus.EnvValue.fromValue(String(waitSeconds)),
          MC_CONFIG_DIR: kplus.EnvValue.fromValue('/tmp/.mc'),
          HOME: kplus.EnvValue.fromValue('/tmp'),
        },
        securityContext: restrictedContainer(MC_UID),
        resources: MC_RESOURCES,
        volumeMounts: [{ path: '/tmp', volume: tmp }],
      }],
    });
    for (const [key, value] of Object.entries(labels.all)) job.podMetadata.addLabel(key, value);
    inServerForm(job, '/spec/template', [{ path: '/spec/template/spec/containers/0', resources: MC_RESOURCES }]);
  }
}
