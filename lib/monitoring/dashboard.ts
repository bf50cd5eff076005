import { createHash } from 'crypto';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { StackContext } from '../kit/context';
import { PartLabels } from '../kit/labels';
import { checkDnsLabel } from '../kit/validate';
import { AlertThresholds, hours } from './alerts';
import { Signals } from './signals';

/**
 * A Grafana dashboard of the stack, as a ConfigMap labelled `grafana_dashboard: "1"`, the form the
 * Grafana Helm chart's dashboard sidecar (and kube-prometheus-stack's) loads. Its panels draw the
 * same expressions the alert rules test.
 */
export interface DashboardOptions {
  /**
   * Turn the dashboard on or off.
   * @default - on with metrics
   */
  readonly enabled?: boolean;
  /**
   * Namespace of the ConfigMap. The sidecar looks only in Grafana's own namespace unless told
   * otherwise (`sidecar.dashboards.searchNamespace: ALL`).
   * @default - the stack's namespace
   */
  readonly namespace?: string;
}

/** What the dashboard draws, and the thresholds it marks. */
export interface DashboardProps {
  readonly context: StackContext;
  readonly labels: PartLabels;
  readonly signals: Signals;
  readonly thresholds: AlertThresholds;
  /** The in-cluster artifact store's name (`MinIO`, `SeaweedFS`). */
  readonly artifactStoreName?: string;
  readonly namespace?: string;
}

interface Target { readonly expr: string; readonly legend: string }
interface Panel {
  readonly title: string;
  readonly description: string;
  readonly type: 'timeseries' | 'stat';
  readonly targets: Target[];
  readonly unit: string;
  /** Values at which the panel turns orange, then red. */
  readonly thresholds?: number[];
  readonly width: number;
}
interface Row { readonly title: string; readonly panels: Panel[] }

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const HEIGHT = 8;

/** The dashboard as Grafana's JSON model. */
export function dashboardModel(props: DashboardProps): Record<string, unknown> {
  const { signals, thresholds: t } = props;
  const { namespace, deployment, databaseStatefulSet: database, artifactStatefulSet: artifacts, backupCronJob: backup, gcCronJob: gc } = signals.stack;
  const ingestion = signals.traceIngestion();
  const rows: Row[] = [
    {
      title: 'Traffic, errors and latency (MLflow\'s own metrics: by method and status, the labels MLflow\'s exporter gives; artifact transfers not counted)',
      panels: [
        { title: 'Requests per second by method', description: 'Requests MLflow answered, by HTTP method: GET reads, POST writes.', type: 'timeseries', targets: [{ expr: signals.requestRate(['method']), legend: '{{method}}' }], unit: 'reqps', width: 8 },
        { title: 'Requests per second by status', description: 'Requests MLflow answered, by HTTP status.', type: 'timeseries', targets: [{ expr: signals.requestRate(['status']), legend: '{{status}}' }], unit: 'reqps', width: 8 },
        { title: 'Server errors (% of requests)', description: `Share of 5xx answers; the line is the MlflowServerErrors threshold (${t.serverErrorPercent}%).`, type: 'timeseries', targets: [{ expr: signals.serverErrorPercent(), legend: '5xx' }], unit: 'percent', thresholds: [t.serverErrorPercent], width: 8 },
        {
          title: 'Latency by method',
          description: `50th, 95th and 99th percentile of request durations; the line is the MlflowServerSlow threshold (${t.latencySeconds}s on the 95th percentile of all requests).`,
          type: 'timeseries',
          targets: [0.5, 0.95, 0.99].map((q) => ({ expr: signals.latency(q, ['method']), legend: `p${Math.round(q * 100)} {{method}}` })),
          unit: 's',
          thresholds: [t.latencySeconds],
          width: 12,
        },
        { title: 'Exceptions per second by method', description: 'Requests that raised an exception inside MLflow (answered 500).', type: 'timeseries', targets: [{ expr: signals.exceptionRate(), legend: '{{method}}' }], unit: 'reqps', width: 12 },
      ],
    },
    {
      title: 'Replicas',
      panels: [
        { title: 'Server replicas', description: 'Ready (available) replicas of the tracking server against what the Deployment or its autoscaler wants.', type: 'timeseries', targets: [{ expr: signals.availableReplicas(), legend: 'available' }, { expr: signals.desiredReplicas(), legend: 'desired' }], unit: 'short', width: 12 },
        { title: 'Pods scraped', description: 'Server pods whose metrics Prometheus scraped successfully.', type: 'stat', targets: [{ expr: signals.scrapedTargetsUp(), legend: 'up' }], unit: 'short', width: 6 },
        { title: 'Pods in the migrate step', description: `Server pods whose migrate step has not completed; MlflowMigrationStuck fires after ${hours(t.migrationSeconds)}.`, type: 'stat', targets: [{ expr: `count(${signals.migratingPods()}) or vector(0)`, legend: 'migrating' }], unit: 'short', thresholds: [1], width: 6 },
      ],
    },
    {
      title: 'Stores',
      panels: [
        ...(database ? [{ title: 'PostgreSQL ready', description: `Ready pods of ${database}.`, type: 'stat' as const, targets: [{ expr: signals.statefulSetReady(database), legend: 'ready' }], unit: 'short', width: 6 }] : []),
        ...(artifacts ? [{ title: `${props.artifactStoreName ?? 'Artifact store'} ready`, description: `Ready pods of ${artifacts}.`, type: 'stat' as const, targets: [{ expr: signals.statefulSetReady(artifacts), legend: 'ready' }], unit: 'short', width: 6 }] : []),
        ...(signals.volumeClaims.length ? [{
          title: 'Volume usage (% of capacity)',
          description: `The stores' data volumes; the lines are MlflowVolumeFillingUp (${t.volumeWarningPercent}%) and MlflowVolumeFull (${t.volumeCriticalPercent}%).`,
          type: 'timeseries' as const,
          targets: [{ expr: signals.volumeUsedPercent(), legend: '{{persistentvolumeclaim}}' }],
          unit: 'percent',
          thresholds: [t.volumeWarningPercent, t.volumeCriticalPercent],
          width: 12,
        }] : []),
      ],
    },
    {
      title: 'Backups and scheduled jobs',
      panels: [
        ...(backup && t.backupMaxAgeSeconds ? [{ title: 'Time since the last successful backup', description: `MlflowBackupTooOld fires above ${hours(t.backupMaxAgeSeconds)}.`, type: 'stat' as const, targets: [{ expr: signals.secondsSinceSuccess(backup), legend: 'age' }], unit: 's', thresholds: [t.backupMaxAgeSeconds], width: 8 }] : []),
        ...(gc ? [{ title: 'Time since the last successful gc', description: `Last successful run of ${gc}.`, type: 'stat' as const, targets: [{ expr: signals.secondsSinceSuccess(gc), legend: 'age' }], unit: 's', width: 8 }] : []),
        ...(signals.cronJobs.length ? [{ title: 'CronJobs whose newest run failed', description: 'MlflowScheduledJobFailed fires for each.', type: 'stat' as const, targets: [{ expr: `count(${signals.latestRunFailed()}) or vector(0)`, legend: 'failed' }], unit: 'short', thresholds: [1], width: 8 }] : []),
      ],
    },
    {
      title: 'Trace ingestion (OTLP, /v1/traces)',
      panels: [
        { title: 'Spans ingested and ingestion errors per second', description: 'Spans stored through the OTLP endpoint, and server errors while ingesting them.', type: 'timeseries', targets: [{ expr: ingestion.spans, legend: 'spans' }, { expr: ingestion.errors, legend: 'errors' }], unit: 'short', width: 12 },
        { title: 'OTLP request duration (95th percentile)', description: 'How long an OTLP export request takes end to end.', type: 'timeseries', targets: [{ expr: ingestion.latency, legend: 'p95' }], unit: 's', width: 12 },
      ],
    },
  ];
  let id = 0;
  let y = 0;
  const panels: unknown[] = [];
  for (const row of rows.filter((r) => r.panels.length)) {
    panels.push({ id: ++id, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    for (const panel of row.panels) {
      if (x + panel.width > 24) {
        x = 0;
        y += HEIGHT;
      }
      panels.push(grafanaPanel(panel, ++id, { h: HEIGHT, w: panel.width, x, y }));
      x += panel.width;
    }
    y += HEIGHT;
  }
  return {
    uid: `mlflow-${createHash('sha256').update(`${namespace}/${deployment}`).digest('hex').slice(0, 12)}`,
    title: `MLflow ${namespace}/${deployment}`,
    description: 'The MLflow stack of cdk8s-mlflow: its tracking server, stores and scheduled jobs. The panels draw the expressions of its alert rules.',
    tags: ['mlflow', 'cdk8s-mlflow'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    refresh: '1m',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    templating: { list: [{ name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1, options: [] }] },
    annotations: { list: [] },
    links: [],
    panels,
  };
}

function grafanaPanel(panel: Panel, id: number, gridPos: Record<string, number>): Record<string, unknown> {
  const marks = panel.thresholds ?? [];
  const colors = marks.length === 1 ? ['red'] : ['orange', 'red'];
  const steps = [{ color: 'green', value: null }, ...marks.map((value, i) => ({ color: colors[i], value }))];
  return {
    id,
    type: panel.type,
    title: panel.title,
    description: panel.description,
    datasource: DATASOURCE,
    gridPos,
    targets: panel.targets.map((target, i) => ({ datasource: DATASOURCE, refId: String.fromCharCode(65 + i), expr: target.expr, legendFormat: target.legend })),
    fieldConfig: {
      defaults: {
        unit: panel.unit,
        thresholds: { mode: 'absolute', steps },
        ...(panel.type === 'timeseries' ? { custom: { thresholdsStyle: { mode: panel.thresholds ? 'line' : 'off' } } } : {}),
      },
      overrides: [],
    },
    options: panel.type === 'stat'
      ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: panel.thresholds ? 'background' : 'value', graphMode: 'area', textMode: 'auto' }
      : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

/** The dashboard ConfigMap, `<name>-dashboard`, in the stack's namespace or the one Grafana watches. */
export class StackDashboard extends Construct {
  public constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const { context } = props;
    const namespace = props.namespace === undefined ? context.namespace : checkDnsLabel(props.namespace, 'metrics.dashboard.namespace');
    const model = dashboardModel(props);
    new k8s.KubeConfigMap(this, 'configmap', {
      metadata: { name: `${context.instance}-dashboard`, namespace, labels: { ...props.labels.all, grafana_dashboard: '1' } },
      // The sidecar writes each key as a file in one folder: a key per stack keeps two stacks apart.
      data: { [`mlflow-${context.namespace}-${context.instance}.json`]: JSON.stringify(model, null, 2) + '\n' },
    });
  }
}
