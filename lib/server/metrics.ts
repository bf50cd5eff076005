import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ServerPart } from './server-part';

/** Prometheus metrics of the tracking server. */
export interface MetricsOptions {
  /**
   * Turn metrics on or off.
   * @default - on when `metrics` is given
   */
  readonly enabled?: boolean;
  /**
   * Emit a prometheus-operator ServiceMonitor (needs its CRD in the cluster).
   * @default true
   */
  readonly serviceMonitor?: boolean;
  /**
   * Scrape interval.
   * @default Duration.seconds(30)
   */
  readonly interval?: Duration;
}

/** Where `--expose-prometheus` keeps its multi-process files: a writable emptyDir. */
const METRICS_DIR = '/mlflow-metrics';

/** MLflow's `/metrics` on its own port, from every worker (prometheus_client's multi-process mode). */
export function metricsPart(scope: Construct): ServerPart {
  const volume = kplus.Volume.fromEmptyDir(scope, 'metrics', 'metrics');
  return { args: ['--expose-prometheus', METRICS_DIR], mounts: [{ path: METRICS_DIR, volume }] };
}
