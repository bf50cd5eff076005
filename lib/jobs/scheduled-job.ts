import { ApiObject, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { metadataOf, StackContext } from '../kit/context';
import { parseCron } from '../kit/cron';
import { PartLabels } from '../kit/labels';
import { addPodSpecFields, podMetadata, PodOptions } from '../kit/pods';
import { restrictedPod } from '../kit/security';

export interface ScheduledJobProps {
  readonly context: StackContext;
  /** The part's name, appended to the instance name: `<instance>-<part>`. */
  readonly part: string;
  readonly labels: PartLabels;
  /** The cron schedule, and the prop it came from (for errors). */
  readonly schedule: string;
  readonly scheduleProp: string;
  /** The uid (and gid, fsGroup) the pod runs as. */
  readonly uid: number;
  readonly containers: kplus.ContainerProps[];
  /** The pod settings (the stack's with the job's own over them). */
  readonly pods: PodOptions;
}

/**
 * What the stack's scheduled jobs (gc, backup) share: never overlapping, a missed run is skipped
 * after an hour, a run is stopped after six hours, a few finished Jobs kept for their logs,
 * restricted pods without a service-account token.
 */
export class ScheduledJob extends Construct {
  /** The CronJob. */
  public readonly cronJob: kplus.CronJob;
  /** The CronJob's name. */
  public readonly name: string;
  /** Its cron schedule, as checked. */
  public readonly schedule: string;

  public constructor(scope: Construct, id: string, props: ScheduledJobProps) {
    super(scope, id);
    const { context, labels } = props;
    this.name = `${context.instance}-${props.part}`;
    this.schedule = props.schedule;
    this.cronJob = new kplus.CronJob(this, 'cronjob', {
      metadata: metadataOf(context, this.name, labels),
      podMetadata: podMetadata(labels, props.pods),
      schedule: parseCron(props.schedule, props.scheduleProp),
      concurrencyPolicy: kplus.ConcurrencyPolicy.FORBID,
      startingDeadline: Duration.hours(1),
      successfulJobsRetained: 3,
      failedJobsRetained: 3,
      backoffLimit: 2,
      activeDeadline: Duration.hours(6),
      restartPolicy: kplus.RestartPolicy.NEVER,
      securityContext: restrictedPod(props.uid),
      automountServiceAccountToken: false,
      containers: props.containers,
    });
    addPodSpecFields(ApiObject.of(this.cronJob), '/spec/jobTemplate/spec/template', props.pods);
  }
}
