import { Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { PrometheusRule, PrometheusRuleSpecGroupsRulesExpr } from '../../imports/prometheusrule-monitoring.coreos.com';
import { metadataOf, StackContext } from '../kit/context';
import { longestGapSeconds } from '../kit/cron';
import { ConfigError } from '../kit/errors';
import { PartLabels } from '../kit/labels';
import { checkInteger, checkSeconds } from '../kit/settings';
import { Signals, Source } from './signals';

/**
 * Alert rules for the person on call, as a prometheus-operator PrometheusRule: the server has no
 * ready replica, answers errors or slowly; a store is down or its volume fills; the last backup is
 * too old; a scheduled job failed; a schema migration is stuck; Prometheus sees nothing. Besides
 * MLflow's own metrics they read kube-state-metrics and the kubelet's volume stats (the README's
 * runbook says which alert needs which).
 */
export interface AlertOptions {
  /**
   * Turn the alert rules on or off.
   * @default - on with the ServiceMonitor (both need prometheus-operator's CRDs), or when `alerts` is given
   */
  readonly enabled?: boolean;
  /**
   * Percentage of requests answered with a server error (5xx), over 10 minutes, above which MLflow is failing.
   * @default 5
   * @minimum 1
   * @maximum 100
   */
  readonly serverErrorPercent?: number;
  /**
   * 95th percentile of request durations, over 10 minutes, from which on MLflow is slow. Whole
   * seconds; 10 s, the largest bucket of MLflow's histogram, means more than 5% of requests took longer.
   * @default Duration.seconds(2)
   * @minimum 1
   * @maximum 10
   */
  readonly latencyP95?: Duration;
  /**
   * Percentage of a store volume's capacity in use that warns.
   * @default 80
   * @minimum 1
   * @maximum 99
   */
  readonly volumeWarningPercent?: number;
  /**
   * Percentage of a store volume's capacity in use that is critical. Above `volumeWarningPercent`.
   * @default 95
   * @minimum 2
   * @maximum 100
   */
  readonly volumeCriticalPercent?: number;
  /**
   * Age of the last successful backup above which it is too old. Longer than the longest gap
   * between two runs of `backup.schedule`.
   * @default - that longest gap plus 3 hours (27 hours for the daily default)
   * @minimum 3600
   * @maximum 31536000
   */
  readonly backupMaxAge?: Duration;
  /**
   * How long a server pod may stay in its `migrate` step (waiting for the database, for the writer
   * fence, migrating) before the migration counts as stuck.
   * @default Duration.minutes(15)
   * @minimum 60
   * @maximum 86400
   */
  readonly migrationMaxDuration?: Duration;
}

/** Severity label of an alert, the routing key of Alertmanager configurations. */
export enum Severity {
  CRITICAL = 'critical',
  WARNING = 'warning',
}

/** One alerting rule, as the PrometheusRule carries it, and the sources its expression needs. */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** How long the condition must hold, as Prometheus writes it (`5m`); none: at once. */
  readonly for?: string;
  readonly severity: Severity;
  readonly summary: string;
  /** What happened and what to check first. */
  readonly description: string;
  readonly sources: Source[];
  /** Labels of the rule itself (for alerts whose expression carries none). */
  readonly labels?: Record<string, string>;
}

/** The parts of the stack the rules are about, beyond the names `Signals` holds. */
export interface AlertTargets {
  readonly signals: Signals;
  /** The server's label selector, for the kubectl commands in descriptions. */
  readonly serverSelector: string;
  /** The in-cluster artifact store's name (`MinIO`, `SeaweedFS`). */
  readonly artifactStoreName?: string;
  /** The backup schedule and where it was set, for the age threshold. */
  readonly backupSchedule?: string;
}

/** The README's runbook, one section per alert, headed by the alert's name. */
export const RUNBOOK_URL = 'https://github.com/cdk8s-mlflow/cdk8s-mlflow/blob/main/README.md#';

/** The thresholds, checked, with their defaults. */
export interface AlertThresholds {
  readonly serverErrorPercent: number;
  readonly latencySeconds: number;
  readonly volumeWarningPercent: number;
  readonly volumeCriticalPercent: number;
  readonly backupMaxAgeSeconds?: number;
  /** The longest gap between two backups, in seconds. */
  readonly backupGapSeconds?: number;
  readonly migrationSeconds: number;
}

const KEY = 'metrics.alerts';

export function alertThresholds(options: AlertOptions, backupSchedule?: string): AlertThresholds {
  const volumeWarningPercent = checkInteger(`${KEY}.volumeWarningPercent`, options.volumeWarningPercent ?? 80);
  const volumeCriticalPercent = checkInteger(`${KEY}.volumeCriticalPercent`, options.volumeCriticalPercent ?? 95);
  if (volumeCriticalPercent <= volumeWarningPercent) {
    throw new ConfigError(`${KEY}.volumeCriticalPercent (${volumeCriticalPercent}) must be above ${KEY}.volumeWarningPercent (${volumeWarningPercent})`, [`${KEY}.volumeCriticalPercent`, `${KEY}.volumeWarningPercent`]);
  }
  let backupMaxAgeSeconds: number | undefined;
  let backupGapSeconds: number | undefined;
  if (backupSchedule === undefined && options.backupMaxAge !== undefined) {
    throw new ConfigError(`${KEY}.backupMaxAge cannot take effect: the stack runs no backup (backup is off, or the database is not the stack's own); leave it out`, [`${KEY}.backupMaxAge`, 'backup.enabled']);
  }
  if (backupSchedule !== undefined) {
    backupGapSeconds = longestGapSeconds(backupSchedule, 'backup.schedule');
    if (options.backupMaxAge === undefined) {
      backupMaxAgeSeconds = backupGapSeconds + 3 * 3600;
    } else {
      backupMaxAgeSeconds = checkSeconds(`${KEY}.backupMaxAge`, options.backupMaxAge);
      if (backupMaxAgeSeconds <= backupGapSeconds) {
        throw new ConfigError(
          `${KEY}.backupMaxAge (${hours(backupMaxAgeSeconds)}) must be longer than the longest gap between two backups of backup.schedule ${JSON.stringify(backupSchedule)} (${hours(backupGapSeconds)}), or the alert would fire before every backup`,
          [`${KEY}.backupMaxAge`, 'backup.schedule'],
        );
      }
    }
  }
  return {
    serverErrorPercent: checkInteger(`${KEY}.serverErrorPercent`, options.serverErrorPercent ?? 5),
    latencySeconds: checkSeconds(`${KEY}.latencyP95`, options.latencyP95 ?? Duration.seconds(2)),
    volumeWarningPercent,
    volumeCriticalPercent,
    backupMaxAgeSeconds,
    backupGapSeconds,
    migrationSeconds: checkSeconds(`${KEY}.migrationMaxDuration`, options.migrationMaxDuration ?? Duration.minutes(15)),
  };
}

/** A duration for people: `27h`, `90m`, `45s`. */
export function hours(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** What every rule's text refers to: the stack's objects and the commands an on-call person runs first. */
interface RuleScope {
  readonly targets: AlertTargets;
  readonly t: AlertThresholds;
  readonly signals: AlertTargets['signals'];
  readonly namespace: string;
  readonly deployment: string;
  readonly kubectl: string;
  readonly pods: string;
}

/** The alert rules of one stack: only those whose subject the stack has. */
export function alertRules(targets: AlertTargets, t: AlertThresholds): AlertRule[] {
  const { signals } = targets;
  const { namespace, deployment } = signals.stack;
  const kubectl = `kubectl -n ${namespace}`;
  const scope: RuleScope = { targets, t, signals, namespace, deployment, kubectl, pods: `${kubectl} get pods -l ${targets.serverSelector}` };
  return [...serverRules(scope), ...storeRules(scope), ...jobRules(scope), ...watchRules(scope)];
}

/** The server: replicas, errors, latency. */
function serverRules({ t, signals, namespace, deployment, kubectl, pods }: RuleScope): AlertRule[] {
  return [
    {
      alert: 'MlflowServerDown',
      expr: `${signals.availableReplicas()} == 0 and on (namespace, deployment) ${signals.desiredReplicas()} > 0`,
      for: '5m',
      severity: Severity.CRITICAL,
      summary: `MLflow ${namespace}/${deployment} has no ready replica`,
      description: `No pod of the tracking server has been ready for 5 minutes: clients cannot reach MLflow. Check first: ${pods}. `
        + `A pod in Init runs its migrate step (${kubectl} logs <pod> -c migrate; see MlflowMigrationStuck); a running pod that is not ready: ${kubectl} logs <pod> -c mlflow and ${kubectl} describe pod <pod> (probe failures, OOMKilled).`,
      sources: [Source.KUBE_STATE_METRICS],
    },
    {
      alert: 'MlflowServerDegraded',
      expr: `${signals.availableReplicas()} < on (namespace, deployment) ${signals.desiredReplicas()}`,
      for: '15m',
      severity: Severity.WARNING,
      summary: `MLflow ${namespace}/${deployment} has fewer ready replicas than it wants`,
      description: `For 15 minutes fewer server pods have been available than the Deployment (or its autoscaler) asks for; one more failure may take MLflow down. Check first: ${pods} `
        + `(Pending: no room on the nodes; CrashLoopBackOff: ${kubectl} logs <pod> -c mlflow --previous).`,
      sources: [Source.KUBE_STATE_METRICS],
    },
    {
      alert: 'MlflowServerErrors',
      expr: `${signals.serverErrorPercent()} > ${t.serverErrorPercent}`,
      for: '10m',
      severity: Severity.CRITICAL,
      summary: `MLflow ${namespace}/${deployment} answers more than ${t.serverErrorPercent}% of requests with server errors`,
      description: `For 10 minutes more than ${t.serverErrorPercent}% of MLflow's answers have been server errors (5xx), most often because of the database. Check first: MlflowDatabaseDown, `
        + `then the server log (${kubectl} logs deployment/${deployment} -c mlflow | grep -iE 'error|exception'); with an external database, its reachability and connection limit.`,
      sources: [Source.MLFLOW],
    },
    {
      alert: 'MlflowServerSlow',
      // At or above: a quantile beyond the largest bucket is reported as that bucket's bound, 10 s.
      expr: `${signals.latency(0.95)} >= ${t.latencySeconds}`,
      for: '10m',
      severity: Severity.WARNING,
      summary: `MLflow ${namespace}/${deployment} is slow: the 95th percentile of request durations is ${t.latencySeconds}s or more`,
      description: `For 10 minutes the 95th percentile of MLflow's request durations has been ${t.latencySeconds}s or more (artifact transfers are not counted). `
        + `Check first: the server pods' CPU against their limit (kubectl top pods; basic auth spends about a second of CPU on each uncached sign-in), then the database (its CPU, slow queries, a full volume).`,
      sources: [Source.MLFLOW],
    },
  ];
}

/** The stores the stack runs, and their volumes. */
function storeRules({ targets, t, signals, namespace, kubectl }: RuleScope): AlertRule[] {
  const { databaseStatefulSet: database, artifactStatefulSet: artifacts } = signals.stack;
  const rules: AlertRule[] = [];
  if (database) {
    rules.push({
      alert: 'MlflowDatabaseDown',
      expr: `${signals.statefulSetReady(database)} == 0`,
      for: '5m',
      severity: Severity.CRITICAL,
      summary: `PostgreSQL ${namespace}/${database} of MLflow is down`,
      description: `PostgreSQL has had no ready pod for 5 minutes: MLflow can neither read nor write runs. Check first: ${kubectl} describe pod ${database}-0 `
        + `(Pending: its volume), then ${kubectl} logs ${database}-0 --previous (a full volume stops it: MlflowVolumeFull).`,
      sources: [Source.KUBE_STATE_METRICS],
    });
  }
  if (artifacts) {
    const name = targets.artifactStoreName ?? 'The artifact store';
    rules.push({
      alert: 'MlflowArtifactStoreDown',
      expr: `${signals.statefulSetReady(artifacts)} == 0`,
      for: '5m',
      severity: Severity.CRITICAL,
      summary: `${name} ${namespace}/${artifacts} of MLflow is down`,
      description: `${name} has had no ready pod for 5 minutes: artifact uploads and downloads fail, and so do backups. Check first: ${kubectl} describe pod ${artifacts}-0, `
        + `then ${kubectl} logs ${artifacts}-0 --previous and its volume (MlflowVolumeFull).`,
      sources: [Source.KUBE_STATE_METRICS],
    });
  }
  if (signals.volumeClaims.length) {
    const volumeCheck = `Check first which store the claim holds (${signals.volumeClaims.join(', ')}); free space (garbageCollection removes the runs deleted long enough ago, with their artifacts) `
      + `or grow the claim, when its StorageClass allows expansion: ${kubectl} patch pvc {{ $labels.persistentvolumeclaim }} -p '{"spec":{"resources":{"requests":{"storage":"<new size>"}}}}'.`;
    rules.push({
      alert: 'MlflowVolumeFillingUp',
      expr: `${signals.volumeUsedPercent()} > ${t.volumeWarningPercent}`,
      for: '5m',
      severity: Severity.WARNING,
      summary: `Volume ${namespace}/{{ $labels.persistentvolumeclaim }} of MLflow is more than ${t.volumeWarningPercent}% full`,
      description: `More than ${t.volumeWarningPercent}% of the volume is in use. ${volumeCheck}`,
      sources: [Source.KUBELET],
    }, {
      alert: 'MlflowVolumeFull',
      expr: `${signals.volumeUsedPercent()} > ${t.volumeCriticalPercent}`,
      for: '5m',
      severity: Severity.CRITICAL,
      summary: `Volume ${namespace}/{{ $labels.persistentvolumeclaim }} of MLflow is more than ${t.volumeCriticalPercent}% full`,
      description: `More than ${t.volumeCriticalPercent}% of the volume is in use: a full PostgreSQL stops, a full S3 server refuses uploads. ${volumeCheck}`,
      sources: [Source.KUBELET],
    });
  }
  return rules;
}

/** The scheduled jobs: backup age, failed runs. */
function jobRules({ targets, t, signals, namespace, deployment, kubectl }: RuleScope): AlertRule[] {
  const { backupCronJob: backup } = signals.stack;
  const rules: AlertRule[] = [];
  if (backup && t.backupMaxAgeSeconds !== undefined) {
    const age = t.backupMaxAgeSeconds;
    rules.push({
      alert: 'MlflowBackupTooOld',
      expr: `(${signals.secondsSinceSuccess(backup)}) > ${age} or (${signals.secondsWithoutAnySuccess(backup)}) > ${age}`,
      severity: Severity.WARNING,
      summary: `No backup of MLflow ${namespace}/${deployment} has succeeded for more than ${hours(age)}`,
      description: `The last successful run of CronJob ${backup} is more than ${hours(age)} old (its schedule ${JSON.stringify(targets.backupSchedule)} runs at least every ${hours(t.backupGapSeconds!)}). `
        + `Check first: ${kubectl} describe cronjob ${backup} (suspended? missed its starting deadline?) and the logs of its newest Job: ${kubectl} logs job/<job> --all-containers.`,
      sources: [Source.KUBE_STATE_METRICS],
    });
  }
  if (signals.cronJobs.length) {
    rules.push({
      alert: 'MlflowScheduledJobFailed',
      expr: signals.latestRunFailed(),
      severity: Severity.WARNING,
      summary: `The newest run of CronJob ${namespace}/{{ $labels.cronjob }} of MLflow failed`,
      description: `A Job of CronJob {{ $labels.cronjob }} failed after its retries, and no later run has succeeded. Check first: ${kubectl} get jobs | grep {{ $labels.cronjob }}, `
        + `then ${kubectl} logs job/<failed job> --all-containers (backup: the database for the dump, S3 and its bucket for the upload; gc: the server and, with basic auth, the admin credentials).`,
      sources: [Source.KUBE_STATE_METRICS],
    });
  }
  return rules;
}

/** What would leave the other rules blind or a rollout stuck: the migrate step, the scrape, kube-state-metrics. */
function watchRules({ t, signals, namespace, deployment, kubectl, pods }: RuleScope): AlertRule[] {
  return [
    {
      alert: 'MlflowMigrationStuck',
      expr: signals.migrationOlderThan(t.migrationSeconds),
      severity: Severity.CRITICAL,
      summary: `Pod ${namespace}/{{ $labels.pod }} has been in its migrate step for more than ${hours(t.migrationSeconds)}`,
      description: `A server pod starts only after its migrate step; while a schema migration is pending, the old servers have stopped (the writer fence). Check first: ${kubectl} logs {{ $labels.pod }} -c migrate. `
        + `"running servers did not stop": a process still holds the fence (a server of a release without the launcher, a gc run, an mlflow started by hand; the runbook's query finds it); "not reachable": the database; "refusing to start": an image older than the schema.`,
      sources: [Source.KUBE_STATE_METRICS],
    },
    {
      alert: 'MlflowMetricsMissing',
      expr: signals.noTargetUp(),
      for: '10m',
      severity: Severity.WARNING,
      summary: `Prometheus scrapes no tracking-server pod of MLflow ${namespace}/${deployment}`,
      description: `For 10 minutes no scrape of the server's metrics port has succeeded: the alerts on errors and latency are blind. Check first: Prometheus's targets page; that it selects ServiceMonitor ${namespace}/${signals.stack.metricsJob} `
        + `(kube-prometheus-stack selects only its own release's label unless serviceMonitorSelectorNilUsesHelmValues is false); that it runs in a namespace of metrics.scrapeFrom; ${pods}.`,
      sources: [Source.PROMETHEUS],
      labels: { namespace, job: signals.stack.metricsJob },
    },
    {
      alert: 'MlflowKubeStateMetricsMissing',
      expr: signals.deploymentUnknown(),
      for: '15m',
      severity: Severity.WARNING,
      summary: `kube-state-metrics reports nothing about MLflow ${namespace}/${deployment}`,
      description: 'The alerts on replicas, stores, scheduled jobs and migrations read kube-state-metrics, which has said nothing about the Deployment for 15 minutes: they are blind. '
        + 'Check first that kube-state-metrics runs and that Prometheus scrapes it (kube-prometheus-stack installs both).',
      sources: [Source.KUBE_STATE_METRICS],
    },
  ];
}

export interface StackAlertsProps {
  readonly context: StackContext;
  readonly labels: PartLabels;
  readonly rules: AlertRule[];
}

/** The stack's alert rules as one PrometheusRule, `<name>-alerts`. */
export class StackAlerts extends Construct {
  public constructor(scope: Construct, id: string, props: StackAlertsProps) {
    super(scope, id);
    const { context } = props;
    new PrometheusRule(this, 'rule', {
      metadata: metadataOf(context, `${context.instance}-alerts`, props.labels),
      spec: {
        groups: [{
          name: `mlflow.${context.namespace}.${context.instance}`,
          rules: props.rules.map((r) => ({
            alert: r.alert,
            expr: PrometheusRuleSpecGroupsRulesExpr.fromString(r.expr),
            for: r.for,
            labels: { ...r.labels, severity: r.severity },
            annotations: { summary: r.summary, description: r.description, runbook_url: `${RUNBOOK_URL}${r.alert.toLowerCase()}` },
          })),
        }],
      },
    });
  }
}
