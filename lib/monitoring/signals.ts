/**
 * Every metric name and PromQL expression the alert rules and the dashboard use, in one place: a
 * rule is a signal and a threshold, a panel the same signal drawn. The names were checked in the
 * sources that emit them (see `Source`); nothing here is emitted by the stack except MLflow's own.
 */

/** Where a signal's metrics come from: what the cluster must run for it. */
export enum Source {
  /**
   * MLflow's `--expose-prometheus` (prometheus_flask_exporter 0.23 with `defaults_prefix="mlflow"`,
   * `group_by=mlflow_version`, in mlflow/server/prometheus_exporter.py of 3.18): `mlflow_http_request_total`
   * `{method, status}`, `mlflow_http_request_exceptions_total{method, status}`,
   * `mlflow_http_request_duration_seconds{method, status, mlflow_version}` (prometheus_client's default
   * buckets, 5 ms to 10 s), for the routes Flask serves (the REST API, the UI; not `/health`, `/version`);
   * and from mlflow/server/otlp_metrics.py `mlflow_otlp_request_duration_seconds`,
   * `mlflow_spans_ingested_total{protocol}`, `mlflow_trace_ingestion_server_errors_total{protocol}` for
   * trace ingestion (`/v1/traces`). Artifact uploads and downloads, served by FastAPI routes, are in neither.
   * Scraped through the stack's ServiceMonitor.
   */
  MLFLOW = 'MLflow /metrics (the stack\'s ServiceMonitor)',
  /** kube-state-metrics 2.x: Deployments, StatefulSets, Pods' init containers, Jobs and CronJobs. */
  KUBE_STATE_METRICS = 'kube-state-metrics',
  /** The kubelet's `/metrics`: `kubelet_volume_stats_*` of mounted PersistentVolumeClaims. */
  KUBELET = 'kubelet volume stats',
  /** Prometheus itself: `up` of each scrape target. */
  PROMETHEUS = 'Prometheus (up)',
}

/** The names of the objects of one stack that the signals are about. */
export interface MonitoredStack {
  readonly namespace: string;
  /** The tracking server's Deployment. */
  readonly deployment: string;
  /** The `job` label of the server's scrape targets: the metrics Service's name (prometheus-operator's default). */
  readonly metricsJob: string;
  /** The in-cluster PostgreSQL's StatefulSet. */
  readonly databaseStatefulSet?: string;
  /** The in-cluster S3 server's StatefulSet (MinIO, SeaweedFS). */
  readonly artifactStatefulSet?: string;
  /** The backup CronJob. */
  readonly backupCronJob?: string;
  /** The garbage-collection CronJob. */
  readonly gcCronJob?: string;
  /** Range of `rate()` and similar, in seconds: at least four scrape intervals. */
  readonly rateWindowSeconds: number;
}

// MLflow (see Source.MLFLOW).
const HTTP_REQUESTS = 'mlflow_http_request_total';
const HTTP_EXCEPTIONS = 'mlflow_http_request_exceptions_total';
const HTTP_DURATION_BUCKETS = 'mlflow_http_request_duration_seconds_bucket';
const OTLP_DURATION_BUCKETS = 'mlflow_otlp_request_duration_seconds_bucket';
const SPANS_INGESTED = 'mlflow_spans_ingested_total';
const TRACE_INGESTION_ERRORS = 'mlflow_trace_ingestion_server_errors_total';
// kube-state-metrics (docs/metrics/workload/*.md of kube-state-metrics 2.x; all STABLE but the terminated reason).
const DEPLOYMENT_AVAILABLE = 'kube_deployment_status_replicas_available';
const DEPLOYMENT_DESIRED = 'kube_deployment_spec_replicas';
const STATEFULSET_READY = 'kube_statefulset_status_replicas_ready';
const INIT_RUNNING = 'kube_pod_init_container_status_running';
const INIT_WAITING = 'kube_pod_init_container_status_waiting';
const INIT_TERMINATED_REASON = 'kube_pod_init_container_status_terminated_reason';
const POD_CREATED = 'kube_pod_created';
const CRONJOB_LAST_SUCCESS = 'kube_cronjob_status_last_successful_time';
const CRONJOB_CREATED = 'kube_cronjob_created';
const JOB_OWNER = 'kube_job_owner';
const JOB_START = 'kube_job_status_start_time';
const JOB_FAILED = 'kube_job_failed';
// The kubelet.
const VOLUME_USED = 'kubelet_volume_stats_used_bytes';
const VOLUME_CAPACITY = 'kubelet_volume_stats_capacity_bytes';

/** A label matcher list: `{namespace="x",job="y"}`. */
function selector(matchers: Array<[string, '=' | '=~' | '!=', string]>): string {
  return `{${matchers.map(([label, op, value]) => `${label}${op}${JSON.stringify(value)}`).join(',')}}`;
}

/** A regular expression that matches exactly these names. */
function oneOf(names: string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/** The PromQL of one stack's signals. */
export class Signals {
  private readonly window: string;

  public constructor(public readonly stack: MonitoredStack) {
    const seconds = stack.rateWindowSeconds;
    this.window = seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
  }

  private ns(...more: Array<[string, '=' | '=~' | '!=', string]>): string {
    return selector([['namespace', '=', this.stack.namespace], ...more]);
  }

  private mlflow(...more: Array<[string, '=' | '=~' | '!=', string]>): string {
    return this.ns(['job', '=', this.stack.metricsJob], ...more);
  }

  /** The stores' data volumes (claim template `data` of each StatefulSet, one pod each). */
  public get volumeClaims(): string[] {
    return [this.stack.databaseStatefulSet, this.stack.artifactStatefulSet].filter((s): s is string => s !== undefined).map((s) => `data-${s}-0`);
  }

  /** The stack's CronJobs. */
  public get cronJobs(): string[] {
    return [this.stack.backupCronJob, this.stack.gcCronJob].filter((s): s is string => s !== undefined);
  }

  /** Requests per second answered by MLflow, by the given labels (`method`, `status`). */
  public requestRate(by: string[]): string {
    return `sum by (${by.join(', ')}) (rate(${HTTP_REQUESTS}${this.mlflow()}[${this.window}]))`;
  }

  /** Requests per second that raised an exception in MLflow, by method. */
  public exceptionRate(): string {
    return `sum by (method) (rate(${HTTP_EXCEPTIONS}${this.mlflow()}[${this.window}]))`;
  }

  /** Percentage of MLflow's answers that were server errors (5xx); no value without traffic. */
  public serverErrorPercent(): string {
    return `100 * sum by (namespace) (rate(${HTTP_REQUESTS}${this.mlflow(['status', '=~', '5..'])}[${this.window}]))`
      + ` / sum by (namespace) (rate(${HTTP_REQUESTS}${this.mlflow()}[${this.window}]))`;
  }

  /** A quantile (0.95) of MLflow's request durations in seconds, over all requests or by the given labels. */
  public latency(quantile: number, by: string[] = []): string {
    return `histogram_quantile(${quantile}, sum by (${['namespace', ...by, 'le'].join(', ')}) (rate(${HTTP_DURATION_BUCKETS}${this.mlflow()}[${this.window}])))`;
  }

  /** Spans ingested per second through `/v1/traces`, and ingestion errors per second. */
  public traceIngestion(): { spans: string; errors: string; latency: string } {
    return {
      spans: `sum(rate(${SPANS_INGESTED}${this.mlflow()}[${this.window}]))`,
      errors: `sum(rate(${TRACE_INGESTION_ERRORS}${this.mlflow()}[${this.window}]))`,
      latency: `histogram_quantile(0.95, sum by (le) (rate(${OTLP_DURATION_BUCKETS}${this.mlflow()}[${this.window}])))`,
    };
  }

  /** Scrape targets of the server that answered the last scrape. */
  public scrapedTargetsUp(): string {
    return `sum(up${this.mlflow()})`;
  }

  /** Present (value 1) while no server pod was scraped successfully. */
  public noTargetUp(): string {
    return `absent(up${this.mlflow()} == 1)`;
  }

  /** The server's available (ready) replicas. */
  public availableReplicas(): string {
    return `${DEPLOYMENT_AVAILABLE}${this.ns(['deployment', '=', this.stack.deployment])}`;
  }

  /** The server's desired replicas (the autoscaler's choice with autoscaling). */
  public desiredReplicas(): string {
    return `${DEPLOYMENT_DESIRED}${this.ns(['deployment', '=', this.stack.deployment])}`;
  }

  /** Present while kube-state-metrics reports nothing about the server's Deployment. */
  public deploymentUnknown(): string {
    return `absent(${this.desiredReplicas()})`;
  }

  /** Ready replicas of a store's StatefulSet. */
  public statefulSetReady(statefulSet: string): string {
    return `${STATEFULSET_READY}${this.ns(['statefulset', '=', statefulSet])}`;
  }

  /** Percent of each store volume's capacity in use. */
  public volumeUsedPercent(): string {
    const claims = this.ns(['persistentvolumeclaim', '=~', oneOf(this.volumeClaims)]);
    return `100 * ${VOLUME_USED}${claims} / ${VOLUME_CAPACITY}${claims}`;
  }

  /** Seconds since a CronJob's last successful run. */
  public secondsSinceSuccess(cronJob: string): string {
    return `time() - max by (namespace, cronjob) (${CRONJOB_LAST_SUCCESS}${this.ns(['cronjob', '=', cronJob])})`;
  }

  /** Seconds since a CronJob was created, while it has never succeeded. */
  public secondsWithoutAnySuccess(cronJob: string): string {
    const job = this.ns(['cronjob', '=', cronJob]);
    return `(time() - max by (namespace, cronjob) (${CRONJOB_CREATED}${job})) unless on (namespace, cronjob) ${CRONJOB_LAST_SUCCESS}${job}`;
  }

  /**
   * For each of the stack's CronJobs whose newest finished run failed (after the Job's own retries)
   * and no later run succeeded: the failed run's start time.
   */
  public latestRunFailed(): string {
    const owned = `max by (namespace, job_name, cronjob) (label_replace(${JOB_OWNER}${this.ns(['owner_kind', '=', 'CronJob'], ['owner_name', '=~', oneOf(this.cronJobs)])}, "cronjob", "$1", "owner_name", "(.+)"))`;
    const failedStart = `max by (namespace, cronjob) ((${JOB_START}${this.ns()} * on (namespace, job_name) group_left (cronjob) ${owned})`
      + ` and on (namespace, job_name) (${JOB_FAILED}${this.ns(['condition', '=', 'true'])} == 1))`;
    const lastSuccess = `max by (namespace, cronjob) (${CRONJOB_LAST_SUCCESS}${this.ns(['cronjob', '=~', oneOf(this.cronJobs)])})`;
    return `(${failedStart} > on (namespace, cronjob) ${lastSuccess}) or (${failedStart} unless on (namespace, cronjob) ${lastSuccess})`;
  }

  /** Server pods whose `migrate` step has not completed: running, waiting to restart, or failed. */
  public migratingPods(): string {
    const migrate = this.ns(['container', '=', 'migrate'], ['pod', '=~', this.serverPods()]);
    const reason = this.ns(['container', '=', 'migrate'], ['pod', '=~', this.serverPods()], ['reason', '!=', 'Completed']);
    return `max by (namespace, pod) ((${INIT_RUNNING}${migrate} == 1) or (${INIT_WAITING}${migrate} == 1) or (${INIT_TERMINATED_REASON}${reason} == 1))`;
  }

  /** Server pods still in their `migrate` step this many seconds after they were created. */
  public migrationOlderThan(seconds: number): string {
    return `${this.migratingPods()} and on (namespace, pod) (time() - ${POD_CREATED}${this.ns(['pod', '=~', this.serverPods()])} > ${seconds})`;
  }

  /** The server Deployment's pods: `<deployment>-<pod-template-hash>-<suffix>`. */
  private serverPods(): string {
    return `${oneOf([this.stack.deployment])}-[a-z0-9]+-[a-z0-9]+`;
  }
}
