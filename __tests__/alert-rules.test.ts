import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Duration } from 'cdk8s';
import { stringify } from 'yaml';
import { ArtifactStore, BackendStore, Credentials } from '../lib';
import { Manifest, one, synthStack, TEST_VALUES } from './support/synth';

/**
 * The alert rules as Prometheus runs them: `promtool check rules` on the synthesized PrometheusRule,
 * then `promtool test rules` with series in the shape their sources emit (MLflow's exporter,
 * kube-state-metrics, the kubelet, Prometheus's `up`), one case where each alert fires and at least
 * one where it stays quiet. The dashboard's queries go through the same parser.
 *
 * promtool comes with Debian's `prometheus` package (.ci/run installs it). Without it this suite
 * fails under CI=true and is skipped, with a message, on a developer's machine.
 */
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const ci = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-promtool-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: work, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Every stack's rule group, as a Prometheus rule file. */
function ruleFile(objects: Manifest[], name: string): string {
  const file = path.join(work, `${name}.rules.yaml`);
  fs.writeFileSync(file, stringify({ groups: one(objects, 'PrometheusRule').spec.groups }, { lineWidth: 0 }));
  return file;
}

type Rule = { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> };
const rulesOf = (objects: Manifest[]): Rule[] => one(objects, 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules);

// The stack every case is about: the default names, PostgreSQL and MinIO in the cluster, backup and gc.
const full = synthStack({ metrics: {}, garbageCollection: {} });
const RULES = rulesOf(full);
const NS = 'namespace="default"';
const POD = 'mlflow-7d9f8c6b5-x2x9z';

/** An alert as promtool expects it: labels, and annotations with `{{ $labels.x }}` filled in. */
function expected(alert: string, labels: Record<string, string>): { exp_labels: Record<string, string>; exp_annotations: Record<string, string> } {
  const rule = RULES.find((r) => r.alert === alert)!;
  const all = { ...rule.labels, ...labels };
  const fill = (text: string) => text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l) => all[l]);
  return { exp_labels: all, exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, fill(v)])) };
}

type Series = { series: string; values: string };
interface Case {
  /** What the case shows. */
  readonly name: string;
  readonly interval?: string;
  readonly series: Series[];
  readonly evalTime: string;
  /** The firing alerts' own labels; none: the alert stays quiet. */
  readonly fires: Array<Record<string, string>>;
}

const ready = (deploymentAvailable: string, desired: string): Series[] => [
  { series: `kube_deployment_status_replicas_available{${NS},deployment="mlflow"}`, values: deploymentAvailable },
  { series: `kube_deployment_spec_replicas{${NS},deployment="mlflow"}`, values: desired },
];
const requests = (status: string, perMinute: number): Series => ({ series: `mlflow_http_request_total{${NS},job="mlflow-metrics",method="POST",status="${status}"}`, values: `0+${perMinute}x40` });
/** Cumulative histogram buckets: requests per minute at or below each bound. */
const durations = (perMinuteAtOrBelow: Record<string, number>): Series[] => Object.entries(perMinuteAtOrBelow).map(([le, n]) => ({
  series: `mlflow_http_request_duration_seconds_bucket{${NS},job="mlflow-metrics",method="GET",mlflow_version="3.18.0",status="200",le="${le}"}`,
  values: `0+${n}x40`,
}));
const volume = (claim: string, usedPercent: number): Series[] => [
  { series: `kubelet_volume_stats_used_bytes{${NS},persistentvolumeclaim="${claim}"}`, values: `${usedPercent}x20` },
  { series: `kubelet_volume_stats_capacity_bytes{${NS},persistentvolumeclaim="${claim}"}`, values: '100x20' },
];
const job = (name: string, owner: string, start: number, failed: boolean): Series[] => [
  { series: `kube_job_owner{${NS},job_name="${name}",owner_kind="CronJob",owner_name="${owner}",owner_is_controller="true"}`, values: '1x10' },
  { series: `kube_job_status_start_time{${NS},job_name="${name}"}`, values: `${start}x10` },
  ...(failed ? [{ series: `kube_job_failed{${NS},job_name="${name}",condition="true"}`, values: '1x10' }] : []),
];
const lastSuccess = (cronjob: string, at: number): Series => ({ series: `kube_cronjob_status_last_successful_time{${NS},cronjob="${cronjob}"}`, values: `${at}x10` });
const migrating = (state: 'running' | 'waiting' | 'completed', createdAt: number): Series[] => [
  { series: `kube_pod_created{${NS},pod="${POD}"}`, values: `${createdAt}x30` },
  { series: `kube_pod_init_container_status_running{${NS},pod="${POD}",container="migrate"}`, values: `${state === 'running' ? 1 : 0}x30` },
  { series: `kube_pod_init_container_status_waiting{${NS},pod="${POD}",container="migrate"}`, values: `${state === 'waiting' ? 1 : 0}x30` },
  ...(state === 'completed' ? [{ series: `kube_pod_init_container_status_terminated_reason{${NS},pod="${POD}",container="migrate",reason="Completed"}`, values: '1x30' }] : []),
];
const other: Series = { series: 'some_unrelated_metric{namespace="default"}', values: '1x40' };

const CASES: Record<string, Case[]> = {
  MlflowServerDown: [
    { name: 'no replica available for 10 minutes', series: ready('0x15', '2x15'), evalTime: '10m', fires: [{ namespace: 'default', deployment: 'mlflow' }] },
    { name: 'down for 3 minutes, then back', series: ready('0 0 0 2 2 2 2 2 2 2', '2x10'), evalTime: '8m', fires: [] },
    { name: 'scaled to zero on purpose (a restore)', series: ready('0x15', '0x15'), evalTime: '10m', fires: [] },
  ],
  MlflowServerDegraded: [
    { name: 'one of two replicas missing for 20 minutes', series: ready('1x25', '2x25'), evalTime: '20m', fires: [{ namespace: 'default', deployment: 'mlflow' }] },
    { name: 'all wanted replicas available', series: ready('2x25', '2x25'), evalTime: '20m', fires: [] },
    { name: 'one missing for 10 minutes only', series: ready('1x10', '2x25'), evalTime: '10m', fires: [] },
  ],
  MlflowServerErrors: [
    { name: '10 of 110 requests a minute fail (9%)', series: [requests('200', 100), requests('500', 10)], evalTime: '20m', fires: [{ namespace: 'default' }] },
    { name: '2 of 102 fail (2%)', series: [requests('200', 100), requests('503', 2)], evalTime: '20m', fires: [] },
    { name: 'no traffic at all', series: [requests('200', 0), requests('500', 0)], evalTime: '20m', fires: [] },
    { name: 'client errors are not server errors', series: [requests('200', 10), requests('404', 50)], evalTime: '20m', fires: [] },
  ],
  MlflowServerSlow: [
    { name: 'most requests take 2.5-5 s', series: durations({ '0.5': 1, '1.0': 1, '2.5': 1, '5.0': 20, '+Inf': 20 }), evalTime: '20m', fires: [{ namespace: 'default' }] },
    { name: 'most requests take longer than the largest bucket (10 s)', series: durations({ '0.5': 1, '1.0': 1, '2.5': 1, '5.0': 1, '+Inf': 20 }), evalTime: '20m', fires: [{ namespace: 'default' }] },
    { name: 'requests take up to half a second', series: durations({ '0.5': 20, '1.0': 20, '2.5': 20, '5.0': 20, '+Inf': 20 }), evalTime: '20m', fires: [] },
    { name: 'no traffic at all', series: durations({ '0.5': 0, '1.0': 0, '2.5': 0, '5.0': 0, '+Inf': 0 }), evalTime: '20m', fires: [] },
  ],
  MlflowDatabaseDown: [
    { name: 'PostgreSQL not ready for 10 minutes', series: [{ series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-postgres"}`, values: '0x15' }], evalTime: '10m', fires: [{ namespace: 'default', statefulset: 'mlflow-postgres' }] },
    { name: 'PostgreSQL ready; another stack\'s down', series: [{ series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-postgres"}`, values: '1x15' }, { series: `kube_statefulset_status_replicas_ready{${NS},statefulset="other-postgres"}`, values: '0x15' }], evalTime: '10m', fires: [] },
  ],
  MlflowArtifactStoreDown: [
    { name: 'MinIO not ready for 10 minutes', series: [{ series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-minio"}`, values: '0x15' }], evalTime: '10m', fires: [{ namespace: 'default', statefulset: 'mlflow-minio' }] },
    { name: 'MinIO ready', series: [{ series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-minio"}`, values: '1x15' }], evalTime: '10m', fires: [] },
  ],
  MlflowVolumeFillingUp: [
    { name: 'PostgreSQL\'s volume 85% full', series: [...volume('data-mlflow-postgres-0', 85), ...volume('data-mlflow-minio-0', 10)], evalTime: '10m', fires: [{ namespace: 'default', persistentvolumeclaim: 'data-mlflow-postgres-0' }] },
    { name: 'half full; another claim in the namespace full', series: [...volume('data-mlflow-postgres-0', 50), ...volume('scratch', 99)], evalTime: '10m', fires: [] },
  ],
  MlflowVolumeFull: [
    { name: 'MinIO\'s volume 97% full', series: volume('data-mlflow-minio-0', 97), evalTime: '10m', fires: [{ namespace: 'default', persistentvolumeclaim: 'data-mlflow-minio-0' }] },
    { name: '85% full warns only', series: volume('data-mlflow-minio-0', 85), evalTime: '10m', fires: [] },
  ],
  MlflowBackupTooOld: [
    { name: 'the last success 30 hours ago', interval: '1h', series: [{ series: `kube_cronjob_status_last_successful_time{${NS},cronjob="mlflow-backup"}`, values: '0x40' }], evalTime: '30h', fires: [{ namespace: 'default', cronjob: 'mlflow-backup' }] },
    { name: 'created 30 hours ago, never succeeded', interval: '1h', series: [{ series: `kube_cronjob_created{${NS},cronjob="mlflow-backup"}`, values: '0x40' }], evalTime: '30h', fires: [{ namespace: 'default', cronjob: 'mlflow-backup' }] },
    { name: 'succeeded 2 hours ago', interval: '1h', series: [{ series: `kube_cronjob_created{${NS},cronjob="mlflow-backup"}`, values: '0x40' }, { series: `kube_cronjob_status_last_successful_time{${NS},cronjob="mlflow-backup"}`, values: '0+3600x40' }], evalTime: '30h', fires: [] },
    { name: 'created 10 hours ago, no run yet', interval: '1h', series: [{ series: `kube_cronjob_created{${NS},cronjob="mlflow-backup"}`, values: '72000x40' }], evalTime: '30h', fires: [] },
  ],
  MlflowScheduledJobFailed: [
    { name: 'the newest backup failed after the last success', series: [...job('mlflow-backup-100', 'mlflow-backup', 6000, true), lastSuccess('mlflow-backup', 3000)], evalTime: '5m', fires: [{ namespace: 'default', cronjob: 'mlflow-backup' }] },
    { name: 'gc failed and never succeeded', series: job('mlflow-gc-7', 'mlflow-gc', 6000, true), evalTime: '5m', fires: [{ namespace: 'default', cronjob: 'mlflow-gc' }] },
    { name: 'a failed run, then a success', series: [...job('mlflow-backup-100', 'mlflow-backup', 6000, true), lastSuccess('mlflow-backup', 9000)], evalTime: '5m', fires: [] },
    { name: 'a run that did not fail; another CronJob\'s failure', series: [...job('mlflow-backup-100', 'mlflow-backup', 6000, false), ...job('etl-5', 'etl', 6000, true)], evalTime: '5m', fires: [] },
  ],
  MlflowMigrationStuck: [
    { name: 'migrate running 20 minutes after the pod was created', series: migrating('running', 0), evalTime: '20m', fires: [{ namespace: 'default', pod: POD }] },
    { name: 'migrate failing and restarting (waiting) for 20 minutes', series: migrating('waiting', 0), evalTime: '20m', fires: [{ namespace: 'default', pod: POD }] },
    { name: 'migrate completed', series: migrating('completed', 0), evalTime: '20m', fires: [] },
    { name: 'a pod 10 minutes old still migrating', series: migrating('running', 600), evalTime: '20m', fires: [] },
  ],
  MlflowMetricsMissing: [
    { name: 'no target at all for 15 minutes', series: [other], evalTime: '15m', fires: [{}] },
    { name: 'every target down for 15 minutes', series: [{ series: `up{${NS},job="mlflow-metrics",pod="${POD}"}`, values: '0x20' }], evalTime: '15m', fires: [{}] },
    { name: 'one of two targets up', series: [{ series: `up{${NS},job="mlflow-metrics",pod="${POD}"}`, values: '0x20' }, { series: `up{${NS},job="mlflow-metrics",pod="mlflow-7d9f8c6b5-abcde"}`, values: '1x20' }], evalTime: '15m', fires: [] },
  ],
  MlflowKubeStateMetricsMissing: [
    { name: 'nothing about the Deployment for 20 minutes', series: [other], evalTime: '20m', fires: [{ namespace: 'default', deployment: 'mlflow' }] },
    { name: 'the Deployment reported', series: ready('2x25', '2x25'), evalTime: '20m', fires: [] },
  ],
};

/** A healthy stack: every source reports, nothing is wrong; no alert fires. */
const HEALTHY: Series[] = [
  ...ready('2x40', '2x40'),
  requests('200', 100), requests('404', 5),
  ...durations({ '0.5': 100, '1.0': 100, '2.5': 100, '5.0': 100, '+Inf': 100 }),
  { series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-postgres"}`, values: '1x40' },
  { series: `kube_statefulset_status_replicas_ready{${NS},statefulset="mlflow-minio"}`, values: '1x40' },
  ...volume('data-mlflow-postgres-0', 40).map((s) => ({ ...s, values: s.values.replace('x20', 'x40') })),
  { series: `kube_cronjob_created{${NS},cronjob="mlflow-backup"}`, values: '0x40' },
  { series: `kube_cronjob_status_last_successful_time{${NS},cronjob="mlflow-backup"}`, values: '0+60x40' },
  ...migrating('completed', 0),
  { series: `up{${NS},job="mlflow-metrics",pod="${POD}"}`, values: '1x40' },
];

const describeWithPromtool = promtool ? describe : describe.skip;
if (!promtool && ci) {
  test('promtool is installed (CI)', () => {
    throw new Error('promtool is not on the PATH: install Debian\'s prometheus package (apt-get install prometheus); the alert-rule tests must run in CI');
  });
} else if (!promtool) {
  test.skip('promtool is not on the PATH: the alert-rule tests are skipped (apt-get install prometheus to run them)', () => undefined);
  console.warn('alert-rules.test.ts: promtool not found; skipping `promtool check rules` and `promtool test rules` (apt-get install prometheus)');
}

describeWithPromtool('alert rules under promtool', () => {
  test('promtool check rules accepts the rules of every configuration that has them', () => {
    const configurations = {
      'full': full,
      'external stores': synthStack({
        credentials: Credentials.fromValues({ ...TEST_VALUES, s3EndpointUrl: 'https://s3.example.com' }),
        backendStore: BackendStore.external({ host: 'db.example.com' }),
        artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com' }),
        metrics: { scrapeFrom: ['monitoring'] },
      }),
      'SeaweedFS, 2-minute scrapes, weekly backups': synthStack({ artifactStore: ArtifactStore.seaweedfs(), metrics: { interval: Duration.minutes(2) }, backup: { schedule: '@weekly' } }),
    };
    for (const [name, objects] of Object.entries(configurations)) {
      const { status, output } = run(['check', 'rules', ruleFile(objects, name)]);
      expect({ name, status, output }).toEqual({ name, status: 0, output: expect.stringContaining('SUCCESS') });
    }
  });

  test('every alert has a firing and a quiet case, and promtool test rules passes them all', () => {
    const names = RULES.map((r) => r.alert);
    expect(Object.keys(CASES).sort()).toEqual([...names].sort());
    for (const [alert, cases] of Object.entries(CASES)) {
      expect({ alert, firing: cases.some((c) => c.fires.length > 0), quiet: cases.some((c) => c.fires.length === 0) }).toEqual({ alert, firing: true, quiet: true });
    }
    const rules = ruleFile(full, 'full');
    const tests = [
      ...Object.entries(CASES).flatMap(([alert, cases]) => cases.map((c) => ({
        name: `${alert}: ${c.name}`,
        interval: c.interval ?? '1m',
        input_series: c.series,
        alert_rule_test: [{ eval_time: c.evalTime, alertname: alert, exp_alerts: c.fires.map((labels) => expected(alert, labels)) }],
      }))),
      {
        name: 'a healthy stack: no alert fires',
        interval: '1m',
        input_series: HEALTHY,
        alert_rule_test: names.map((alertname) => ({ eval_time: '30m', alertname, exp_alerts: [] })),
      },
    ];
    // One file per sample interval, evaluated at that interval: hours of backup age need no evaluation a minute.
    const files = [...new Set(tests.map((t) => t.interval))].map((interval) => {
      const file = path.join(work, `alerts-${interval}.test.yaml`);
      const group = tests.filter((t) => t.interval === interval);
      fs.writeFileSync(file, stringify({ rule_files: [path.basename(rules)], evaluation_interval: interval, tests: group }, { lineWidth: 0 }));
      return file;
    });
    const { status, output } = run(['test', 'rules', ...files]);
    expect({ status, output }).toEqual({ status: 0, output: expect.not.stringContaining('FAILED') });
  });

  test('every dashboard query is PromQL that promtool parses', () => {
    const configMap = one(full, 'ConfigMap', 'mlflow-dashboard');
    const dashboard = JSON.parse(Object.values<string>(configMap.data)[0]);
    const exprs = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => ({ panel: p.id, ref: t.refId, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(15);
    const file = path.join(work, 'dashboard.rules.yaml');
    fs.writeFileSync(file, stringify({
      groups: [{ name: 'dashboard', rules: exprs.map((e: any) => ({ record: `mlflow_dashboard:panel_${e.panel}_${e.ref}`, expr: e.expr })) }],
    }, { lineWidth: 0 }));
    const { status, output } = run(['check', 'rules', file]);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining(`SUCCESS: ${exprs.length} rules found`) });
  });
});
