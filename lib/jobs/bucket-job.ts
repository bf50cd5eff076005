import { createHash } from 'crypto';
import { ApiObject, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { SecretKeys } from '../credentials/secret-keys';
import { defaultImage, metadataOf, partLabels, partPods, StackContext } from '../kit/context';
import { DefaultImages } from '../kit/images';
import { imageVersion, PartLabels } from '../kit/labels';
import { addPodSpecFields, hasPodSettings, podMetadata, PodOptions } from '../kit/pods';
import { resources } from '../kit/resources';
import { restrictedContainer, restrictedPod } from '../kit/security';
import { checkSeconds } from '../kit/settings';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { BUCKET_SCRIPT } from './s3-scripts';

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
   * @minimum 5
   * @maximum 3600
   */
  readonly waitTimeout?: Duration;
  /**
   * Pod settings of its pods, over the stack's `pods`: maps merged key by key, other fields replaced (see PodOptions).
   * @default - the stack's `pods`
   */
  readonly pods?: PodOptions;
}

export interface BucketJobProps extends BucketJobOptions {
  readonly context: StackContext;
  /** Where the bucket lives. */
  readonly artifactStore: ArtifactStoreConnection;
  /** The credential values, when the stack writes the Secret: a change of a setting the Job reads must rerun it. */
  readonly values?: CredentialValues;
}

const MC_UID = 1000;

/**
 * A Job that makes the artifact bucket exist. A Job's pod template is immutable, so the name ends
 * in a hash of everything that shapes the pod and of the Secret's settings it reads (artifact root,
 * endpoint, region): a changed Job is a new Job, and re-applying an unchanged one changes nothing.
 */
export class BucketJob extends Construct {
  /** The Job's name, `<instance>-bucket-<hash>`. */
  public readonly jobName: string;
  /** The `mc` image. */
  public readonly image: string;
  /** The Job's labels; the selector picks its pods. */
  public readonly labels: PartLabels;
  /** The Job. */
  public readonly job: kplus.Job;

  public constructor(scope: Construct, id: string, props: BucketJobProps) {
    super(scope, id);
    const { context, values } = props;
    const { secret } = context;
    this.image = props.image ?? defaultImage(context, DefaultImages.MINIO_CLIENT);
    const pods = partPods(context, props.pods, 'bucketJob.pods');
    const waitSeconds = checkSeconds('bucketJob.waitTimeout', props.waitTimeout ?? Duration.minutes(5));
    this.labels = partLabels(context, 'mlflow', 'bucket-job', imageVersion(this.image));
    const env = {
      ...props.artifactStore.clientEnv(secret),
      MLFLOW_S3_ARTIFACT_ROOT: secret.envValue(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
    };
    const settings = values ? createHash('sha256').update(JSON.stringify([values.artifactRoot, props.artifactStore.endpointUrl, values.awsRegion])).digest('hex') : '';
    const shape = {
      namespace: context.namespace, instance: context.instance, secretName: secret.name, clusterDomain: context.clusterDomain,
    };
    const s3 = props.artifactStore;
    const store = { endpointUrl: s3.endpointUrl, ignoreTls: s3.ignoreTls, credentialsAreRootUser: s3.checkCredentials !== undefined, podSelector: s3.inCluster?.labels.selector };
    // Pod settings shape the pod too; without them the name stays what it was before they existed.
    const fingerprint = JSON.stringify([this.image, waitSeconds, BUCKET_SCRIPT, shape, store, Object.keys(env), settings, ...(hasPodSettings(pods) ? [pods] : [])]);
    this.jobName = `${context.instance}-bucket-${createHash('sha256').update(fingerprint).digest('hex').slice(0, 8)}`;
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp');

    this.job = new kplus.Job(this, 'job', {
      metadata: metadataOf(context, this.jobName, this.labels),
      podMetadata: podMetadata(this.labels, pods),
      backoffLimit: 6,
      activeDeadline: Duration.minutes(30),
      // Keeps a day of logs, then goes, so old hashes do not pile up.
      ttlAfterFinished: Duration.days(1),
      restartPolicy: kplus.RestartPolicy.NEVER,
      securityContext: restrictedPod(MC_UID),
      automountServiceAccountToken: false,
      containers: [{
        name: 'mc',
        image: this.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['/bin/sh', '-c', BUCKET_SCRIPT],
        envVariables: {
          ...env,
          BUCKET_WAIT_SECONDS: kplus.EnvValue.fromValue(String(waitSeconds)),
          MC_CONFIG_DIR: kplus.EnvValue.fromValue('/tmp/.mc'),
          HOME: kplus.EnvValue.fromValue('/tmp'),
        },
        securityContext: restrictedContainer(MC_UID),
        resources: resources(50, 64, 500, 256),
        volumeMounts: [{ path: '/tmp', volume: tmp }],
      }],
    });
    addPodSpecFields(ApiObject.of(this.job), '/spec/template', pods);
  }
}
