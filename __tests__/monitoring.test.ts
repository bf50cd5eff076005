import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { AppConfig, ArtifactStore, BackendStore, ConfigError, Credentials, MlflowStack } from '../lib';
import { longestGapSeconds } from '../lib/kit/cron';
import { Manifest, one, synthStack, TEST_VALUES } from './support/synth';

/** The facts of the alert rules and the dashboard that hold without Prometheus (promtool runs them in alert-rules.test.ts). */
type Rule = { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> };
const rulesOf = (objects: Manifest[]): Rule[] => one(objects, 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules);
const alertsOf = (objects: Manifest[]) => rulesOf(objects).map((r) => r.alert);
const rule = (objects: Manifest[], alert: string) => rulesOf(objects).find((r) => r.alert === alert)!;
const dashboardOf = (objects: Manifest[]) => JSON.parse(Object.values<string>(one(objects, 'ConfigMap').data)[0]);
const README = fs.readFileSync(path.resolve(__dirname, '..', 'README.md'), 'utf8');

function expectConfigError(fn: () => unknown, pattern: RegExp, keys?: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(pattern);
    if (keys) expect((err as ConfigError).keys).toEqual(keys);
    return;
  }
  throw new Error('expected a ConfigError');
}

const external = {
  credentials: Credentials.fromValues({ ...TEST_VALUES, s3EndpointUrl: 'https://s3.example.com' }),
  backendStore: BackendStore.external({ host: 'db.example.com' }),
  artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com' }),
};

describe('alert rules', () => {
  const full = synthStack({ metrics: {}, garbageCollection: {} });

  test('with metrics: one PrometheusRule, in the stack\'s namespace, with every alert the stack has a subject for', () => {
    const rule = one(full, 'PrometheusRule', 'mlflow-alerts');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.metadata.namespace).toBe('default');
    expect(alertsOf(full)).toEqual([
      'MlflowServerDown', 'MlflowServerDegraded', 'MlflowServerErrors', 'MlflowServerSlow', 'MlflowDatabaseDown', 'MlflowArtifactStoreDown',
      'MlflowVolumeFillingUp', 'MlflowVolumeFull', 'MlflowBackupTooOld', 'MlflowScheduledJobFailed', 'MlflowMigrationStuck',
      'MlflowMetricsMissing', 'MlflowKubeStateMetricsMissing',
    ]);
    // External stores: nothing of theirs to watch in the cluster, no backup; no gc either.
    expect(alertsOf(synthStack({ ...external, metrics: {} }))).toEqual([
      'MlflowServerDown', 'MlflowServerDegraded', 'MlflowServerErrors', 'MlflowServerSlow', 'MlflowMigrationStuck', 'MlflowMetricsMissing', 'MlflowKubeStateMetricsMissing',
    ]);
    expect(alertsOf(synthStack({ ...external, metrics: {}, garbageCollection: {} }))).toContain('MlflowScheduledJobFailed');
  });

  test('every alert has a severity, a summary, a description that says what to check first, and a runbook section in the README', () => {
    for (const r of rulesOf(full)) {
      expect({ alert: r.alert, severity: ['critical', 'warning'].includes(r.labels.severity) }).toEqual({ alert: r.alert, severity: true });
      expect(r.annotations.summary.length).toBeGreaterThan(20);
      expect(r.annotations.description).toMatch(/Check first/);
      expect(r.annotations.runbook_url).toBe(`https://github.com/cdk8s-mlflow/cdk8s-mlflow/blob/main/README.md#${r.alert.toLowerCase()}`);
      expect({ alert: r.alert, inReadme: new RegExp(`^### ${r.alert}$`, 'm').test(README) }).toEqual({ alert: r.alert, inReadme: true });
    }
  });

  test('every expression is scoped to the stack\'s namespace and objects', () => {
    const other = synthStack({ name: 'tracking', namespace: 'ml', metrics: {}, garbageCollection: {} });
    for (const r of rulesOf(other)) {
      expect(r.expr).toContain('namespace="ml"');
      expect(r.expr).not.toMatch(/"mlflow[-"]/);
    }
    expect(rule(other, 'MlflowServerErrors').expr).toContain('job="tracking-metrics"');
    expect(rule(other, 'MlflowDatabaseDown').expr).toContain('statefulset="tracking-postgres"');
    expect(rule(other, 'MlflowVolumeFull').expr).toContain('persistentvolumeclaim=~"data-tracking-postgres-0|data-tracking-minio-0"');
    expect(rule(other, 'MlflowScheduledJobFailed').expr).toContain('owner_name=~"tracking-backup|tracking-gc"');
    expect(rule(other, 'MlflowMigrationStuck').expr).toContain('pod=~"tracking-[a-z0-9]+-[a-z0-9]+"');
    expect(rule(synthStack({ metrics: {}, artifactStore: ArtifactStore.seaweedfs() }), 'MlflowArtifactStoreDown')).toMatchObject({
      expr: expect.stringContaining('statefulset="mlflow-seaweedfs"'), annotations: { summary: 'SeaweedFS default/mlflow-seaweedfs of MLflow is down' },
    });
  });

  test('thresholds are settings with defaults', () => {
    expect(rule(full, 'MlflowServerErrors').expr).toMatch(/ > 5$/);
    expect(rule(full, 'MlflowServerSlow').expr).toMatch(/^histogram_quantile\(0\.95, .* >= 2$/);
    expect(rule(full, 'MlflowVolumeFillingUp').expr).toMatch(/ > 80$/);
    expect(rule(full, 'MlflowVolumeFull').expr).toMatch(/ > 95$/);
    expect(rule(full, 'MlflowBackupTooOld').expr).toContain(' > 97200'); // daily backups: 24 h + 3 h
    expect(rule(full, 'MlflowMigrationStuck').expr).toContain(' > 900');
    const custom = synthStack({
      metrics: { alerts: { serverErrorPercent: 10, latencyP95: Duration.seconds(5), volumeWarningPercent: 70, volumeCriticalPercent: 90, backupMaxAge: Duration.hours(48), migrationMaxDuration: Duration.minutes(30) } },
    });
    expect(rule(custom, 'MlflowServerErrors').expr).toMatch(/ > 10$/);
    expect(rule(custom, 'MlflowServerErrors').annotations.summary).toContain('more than 10% of requests');
    expect(rule(custom, 'MlflowServerSlow').expr).toMatch(/ >= 5$/);
    expect(rule(custom, 'MlflowVolumeFillingUp').expr).toMatch(/ > 70$/);
    expect(rule(custom, 'MlflowVolumeFull').expr).toMatch(/ > 90$/);
    expect(rule(custom, 'MlflowBackupTooOld').expr).toContain(' > 172800');
    expect(rule(custom, 'MlflowMigrationStuck').expr).toContain(' > 1800');
    // The backup age follows the schedule: weekly backups are too old after a week and 3 hours.
    expect(rule(synthStack({ metrics: {}, backup: { schedule: '@weekly' } }), 'MlflowBackupTooOld').expr).toContain(` > ${7 * 86400 + 3 * 3600}`);
    // rate() spans at least four scrapes.
    expect(rule(synthStack({ metrics: { interval: Duration.minutes(2) } }), 'MlflowServerErrors').expr).toContain('[8m]');
    expect(rule(full, 'MlflowServerErrors').expr).toContain('[5m]');
  });

  test('thresholds out of range, or that could never be quiet, are refused with their keys', () => {
    expectConfigError(() => synthStack({ metrics: { alerts: { serverErrorPercent: 0 } } }), /metrics\.alerts\.serverErrorPercent must be an integer from 1 to 100/, ['metrics.alerts.serverErrorPercent']);
    expectConfigError(() => synthStack({ metrics: { alerts: { latencyP95: Duration.seconds(11) } } }), /metrics\.alerts\.latencyP95 must be whole seconds from 1s to 10s/);
    expectConfigError(() => synthStack({ metrics: { alerts: { volumeWarningPercent: 90, volumeCriticalPercent: 85 } } }), /volumeCriticalPercent \(85\) must be above metrics\.alerts\.volumeWarningPercent \(90\)/,
      ['metrics.alerts.volumeCriticalPercent', 'metrics.alerts.volumeWarningPercent']);
    expectConfigError(() => synthStack({ metrics: { alerts: { backupMaxAge: Duration.hours(30) } }, backup: { schedule: '0 2 * * 1' } }),
      /metrics\.alerts\.backupMaxAge \(30h\) must be longer than the longest gap between two backups of backup\.schedule "0 2 \* \* 1" \(168h\)/,
      ['metrics.alerts.backupMaxAge', 'backup.schedule']);
    expectConfigError(() => synthStack({ ...external, metrics: { alerts: { backupMaxAge: Duration.days(2) } } }), /metrics\.alerts\.backupMaxAge cannot take effect: the stack runs no backup/,
      ['metrics.alerts.backupMaxAge', 'backup.enabled']);
    expectConfigError(() => synthStack({ metrics: { scrapeFrom: [] } }), /metrics\.scrapeFrom is empty/, ['metrics.scrapeFrom']);
    expectConfigError(() => synthStack({ metrics: { scrapeFrom: ['Monitoring'] } }), /metrics\.scrapeFrom must be a DNS label/);
  });

  test('mlflow.yaml spells them as settings, and an error names the line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-alerts-'));
    const env = path.resolve(__dirname, '..', '.env.example');
    const load = (yaml: string) => {
      fs.writeFileSync(path.join(dir, 'mlflow.yaml'), yaml);
      return AppConfig.load(path.join(dir, 'mlflow.yaml'));
    };
    try {
      const config = load('metrics:\n  scrapeFrom: [monitoring]\n  alerts:\n    latencyP95: 3s\n    backupMaxAge: 2d\n  dashboard: { namespace: grafana }\n');
      const chart = new Chart(Testing.app(), 'c');
      new MlflowStack(chart, 'm', config.stackProps(env));
      const objects = Testing.synth(chart) as Manifest[];
      expect(rule(objects, 'MlflowServerSlow').expr).toMatch(/ >= 3$/);
      expect(rule(objects, 'MlflowBackupTooOld').expr).toContain(' > 172800');
      expect(one(objects, 'ConfigMap').metadata.namespace).toBe('grafana');
      const bad = load('name: mlflow\nmetrics:\n  alerts:\n    backupMaxAge: 20h\n');
      try {
        new MlflowStack(new Chart(Testing.app(), 'c'), 'm', bad.stackProps(env));
        throw new Error('expected a ConfigError');
      } catch (err) {
        expect(bad.locate((err as ConfigError).message, [...(err as ConfigError).keys])).toMatch(/mlflow\.yaml line 4: metrics\.alerts\.backupMaxAge \(20h\) must be longer than/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('follow the ServiceMonitor unless told otherwise', () => {
    expect(synthStack({ metrics: { serviceMonitor: false } }).some((o) => o.kind === 'PrometheusRule')).toBe(false);
    expect(synthStack({ metrics: { serviceMonitor: false, alerts: { enabled: true } } }).some((o) => o.kind === 'PrometheusRule')).toBe(true);
    // Giving the options of a part that is off by default turns it on, as everywhere in the stack.
    expect(synthStack({ metrics: { serviceMonitor: false, alerts: { serverErrorPercent: 10 } } }).some((o) => o.kind === 'PrometheusRule')).toBe(true);
    expect(synthStack({ metrics: { alerts: { enabled: false } } }).some((o) => o.kind === 'PrometheusRule')).toBe(false);
    expect(synthStack().some((o) => ['PrometheusRule', 'ServiceMonitor', 'ConfigMap'].includes(o.kind) || o.metadata.name === 'mlflow-metrics')).toBe(false);
  });
});

describe('cron gaps', () => {
  test.each([
    ['0 2 * * *', 24], ['@daily', 24], ['@weekly', 168], ['15 1 * * 1-5', 72], ['0 */6 * * *', 6], ['*/30 * * * *', 0.5], ['0 3 1 * *', 744], ['0 0 1,15 * 1', 168],
  ])('%s: the longest gap between two runs is %d h', (schedule, hours) => {
    expect(longestGapSeconds(schedule, 'backup.schedule')).toBe(hours * 3600);
  });
});

describe('dashboard', () => {
  const objects = synthStack({ metrics: {}, garbageCollection: {} });
  const dashboard = dashboardOf(objects);
  const panels = dashboard.panels.filter((p: any) => p.type !== 'row');

  test('a ConfigMap the Grafana sidecar loads: the grafana_dashboard label, one JSON file per stack', () => {
    const configMap = one(objects, 'ConfigMap', 'mlflow-dashboard');
    expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/instance': 'mlflow' });
    expect(Object.keys(configMap.data)).toEqual(['mlflow-default-mlflow.json']);
    expect(dashboard).toMatchObject({ title: 'MLflow default/mlflow', uid: expect.stringMatching(/^mlflow-[0-9a-f]{12}$/), schemaVersion: expect.any(Number) });
    expect(dashboard.templating.list).toEqual([expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' })]);
    const elsewhere = one(synthStack({ metrics: { dashboard: { namespace: 'monitoring' } } }), 'ConfigMap');
    expect(elsewhere.metadata.namespace).toBe('monitoring');
    expect(synthStack({ metrics: { dashboard: { enabled: false } } }).some((o) => o.kind === 'ConfigMap')).toBe(false);
    expectConfigError(() => synthStack({ metrics: { dashboard: { namespace: 'Monitoring' } } }), /metrics\.dashboard\.namespace must be a DNS label/);
  });

  test('panels for traffic, errors, latency, replicas, stores, volumes and backup age, laid out on the 24-column grid', () => {
    const titles = panels.map((p: any) => p.title);
    expect(titles).toEqual(expect.arrayContaining([
      'Requests per second by method', 'Requests per second by status', 'Server errors (% of requests)', 'Latency by method', 'Server replicas',
      'PostgreSQL ready', 'MinIO ready', 'Volume usage (% of capacity)', 'Time since the last successful backup', 'Pods in the migrate step',
    ]));
    const ids = dashboard.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
      expect(new Set(p.targets.map((t: any) => t.refId)).size).toBe(p.targets.length);
    }
  });

  test('draws what the alerts watch: every alert\'s metrics appear in a panel, thresholds marked', () => {
    const metricNames = (expr: string) => [...expr.matchAll(/([a-z_:][a-z0-9_:]*)\{/g)].map((m) => m[1]);
    const drawn = new Set(panels.flatMap((p: any) => p.targets.flatMap((t: any) => metricNames(t.expr))));
    for (const r of rulesOf(objects)) {
      expect({ alert: r.alert, drawn: metricNames(r.expr).some((n) => drawn.has(n)) }).toEqual({ alert: r.alert, drawn: true });
    }
    const errors = panels.find((p: any) => p.title === 'Server errors (% of requests)');
    expect(rule(objects, 'MlflowServerErrors').expr).toBe(`${errors.targets[0].expr} > 5`);
    expect(errors.fieldConfig.defaults.thresholds.steps).toEqual([{ color: 'green', value: null }, { color: 'red', value: 5 }]);
    const volumes = panels.find((p: any) => p.title === 'Volume usage (% of capacity)');
    expect(rule(objects, 'MlflowVolumeFillingUp').expr).toBe(`${volumes.targets[0].expr} > 80`);
    expect(volumes.fieldConfig.defaults.thresholds.steps.map((s: any) => s.value)).toEqual([null, 80, 95]);
  });

  test('only the panels of parts the stack has', () => {
    const titles = dashboardOf(synthStack({ ...external, metrics: {} })).panels.map((p: any) => p.title);
    expect(titles).not.toEqual(expect.arrayContaining(['PostgreSQL ready']));
    expect(titles.filter((t: string) => /PostgreSQL|MinIO|Volume|backup|CronJobs/.test(t))).toEqual([]);
    expect(titles).not.toContain('Stores');
  });
});
