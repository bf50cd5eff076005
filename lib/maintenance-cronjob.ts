import { ApiObjectMetadata, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { parseCron } from './cron';
import { restrictedPod } from './security';

/**
 * What the stack's maintenance CronJobs (gc, backup) share: never overlapping, a missed run is
 * skipped after an hour, a run is stopped after six hours, a few finished Jobs kept for their logs,
 * restricted pods without a service-account token.
 */
export function maintenanceCronJobProps(metadata: ApiObjectMetadata, schedule: string, scheduleProp: string, uid: number) {
  return {
    metadata,
    schedule: parseCron(schedule, scheduleProp),
    concurrencyPolicy: kplus.ConcurrencyPolicy.FORBID,
    startingDeadline: Duration.hours(1),
    successfulJobsRetained: 3,
    failedJobsRetained: 3,
    backoffLimit: 2,
    activeDeadline: Duration.hours(6),
    restartPolicy: kplus.RestartPolicy.NEVER,
    securityContext: restrictedPod(uid),
    automountServiceAccountToken: false,
  };
}
