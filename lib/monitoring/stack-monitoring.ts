import { Construct } from 'constructs';
import { partLabels, StackContext } from '../kit/context';
import { isEnabled } from '../kit/feature';
import { AlertOptions, alertRules, alertThresholds, StackAlerts } from './alerts';
import { DashboardOptions, StackDashboard } from './dashboard';
import { Signals } from './signals';

/** What the alerts and the dashboard need to know of the stack, by name. */
export interface StackMonitoringProps {
  readonly context: StackContext;
  readonly alerts?: AlertOptions;
  /** Alerts follow the ServiceMonitor, unless `alerts` is given or `alerts.enabled` says otherwise. */
  readonly serviceMonitor: boolean;
  readonly dashboard?: DashboardOptions;
  /** The metrics Service's name, the `job` label of the server's targets. */
  readonly metricsJob: string;
  /** The server's Deployment. */
  readonly deployment: string;
  /** The server pods' label selector, for kubectl commands in descriptions. */
  readonly serverSelector: Record<string, string>;
  /** The scrape interval in seconds. */
  readonly intervalSeconds: number;
  readonly databaseStatefulSet?: string;
  readonly artifactStatefulSet?: string;
  readonly artifactStoreName?: string;
  readonly backup?: { readonly name: string; readonly schedule: string };
  readonly gcCronJob?: string;
}

/** The stack's PrometheusRule and Grafana dashboard, from one set of signals and thresholds. */
export class StackMonitoring extends Construct {
  public constructor(scope: Construct, id: string, props: StackMonitoringProps) {
    super(scope, id);
    const { context } = props;
    const signals = new Signals({
      namespace: context.namespace,
      deployment: props.deployment,
      metricsJob: props.metricsJob,
      databaseStatefulSet: props.databaseStatefulSet,
      artifactStatefulSet: props.artifactStatefulSet,
      backupCronJob: props.backup?.name,
      gcCronJob: props.gcCronJob,
      // rate() needs a few samples in its range: at least four scrapes, and five minutes.
      rateWindowSeconds: Math.max(300, 4 * props.intervalSeconds),
    });
    const thresholds = alertThresholds(props.alerts ?? {}, props.backup?.schedule);
    const labels = partLabels(context, 'mlflow', 'monitoring');
    if (isEnabled(props.alerts, props.serviceMonitor || props.alerts !== undefined)) {
      const serverSelector = Object.entries(props.serverSelector).map(([k, v]) => `${k}=${v}`).join(',');
      const rules = alertRules({ signals, serverSelector, artifactStoreName: props.artifactStoreName, backupSchedule: props.backup?.schedule }, thresholds);
      new StackAlerts(this, 'alerts', { context, labels, rules });
    }
    if (isEnabled(props.dashboard, true)) {
      new StackDashboard(this, 'dashboard', { context, labels, signals, thresholds, artifactStoreName: props.artifactStoreName, namespace: props.dashboard?.namespace });
    }
  }
}
