import * as kplus from 'cdk8s-plus-28';
import { ConfigError } from '../kit/errors';
import { isEnabled } from '../kit/feature';
import { ServerPart } from './server-part';

/** MLflow's background job execution. */
export interface JobsOptions {
  /**
   * On or off; on needs `replicas: 1` and no autoscaling.
   * @default false
   */
  readonly enabled?: boolean;
}

/** Whether jobs run; MLflow keeps their queue in each pod, so they need exactly one replica. */
export function jobsEnabled(options: JobsOptions | undefined, replicas: number, autoscaled: boolean): boolean {
  const jobs = isEnabled(options, false);
  if (jobs && (replicas !== 1 || autoscaled)) {
    throw new ConfigError('server.jobs needs server.replicas: 1 and no server.autoscaling: MLflow keeps the job queue in each pod, and a starting pod runs again the jobs other pods are running', ['server.jobs.enabled', 'server.jobs', 'server.replicas', 'server.autoscaling']);
  }
  return jobs;
}

/** With jobs, a pod is replaced without overlap (Recreate), else a new pod starts before an old one stops. */
export function jobsPart(enabled: boolean): ServerPart & { strategy: kplus.DeploymentStrategy } {
  return {
    env: { MLFLOW_SERVER_ENABLE_JOB_EXECUTION: kplus.EnvValue.fromValue(String(enabled)) },
    // Schema upgrades stop the old pods through the writer fence (programs.ts), so overlap is safe.
    strategy: enabled
      ? kplus.DeploymentStrategy.recreate()
      : kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
  };
}
