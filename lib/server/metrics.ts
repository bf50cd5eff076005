import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ConfigError } from '../kit/errors';
import { resources } from '../kit/resources';
import { restrictedContainer } from '../kit/security';
import { checkDnsLabel } from '../kit/validate';
import { AlertOptions } from '../monitoring/alerts';
import { DashboardOptions } from '../monitoring/dashboard';
import { metricsListenerProgram } from './programs';
import { ServerPart } from './server-part';

/** Prometheus metrics of the tracking server, alert rules and a dashboard. */
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
  /**
   * Namespaces whose pods may scrape the server's metrics port (the NetworkPolicy admits no one
   * else to it). Name your Prometheus's namespace here.
   * @default - every namespace
   */
  readonly scrapeFrom?: string[];
  /**
   * Alert rules (a PrometheusRule) and their thresholds.
   * @default - on with the ServiceMonitor or when given, with the defaults of AlertOptions
   */
  readonly alerts?: AlertOptions;
  /**
   * A Grafana dashboard (a ConfigMap for Grafana's dashboard sidecar).
   * @default - on with metrics
   */
  readonly dashboard?: DashboardOptions;
}

/** Where `--expose-prometheus` keeps its multi-process files: a writable emptyDir. */
const METRICS_DIR = '/mlflow-metrics';
/** The pod port of the metrics listener, the only port of the server pod Prometheus needs. */
export const METRICS_PORT = 9464;
const LISTENER_UID = 1000;

/** The namespaces allowed to scrape, checked; undefined means every namespace. */
export function scrapeNamespaces(options: MetricsOptions | undefined): string[] | undefined {
  const namespaces = options?.scrapeFrom;
  // An empty `from` in a NetworkPolicy rule admits everyone: never write one.
  if (namespaces?.length === 0) throw new ConfigError('metrics.scrapeFrom is empty: name the namespaces of your Prometheus (or leave the setting out to admit every namespace)', 'metrics.scrapeFrom');
  return namespaces?.map((ns) => checkDnsLabel(ns, 'metrics.scrapeFrom'));
}

/**
 * MLflow's `/metrics` from every worker (prometheus_client's multi-process mode), and a listener
 * beside it that serves the same files on a port of their own: behind neither basic auth nor the
 * single sign-on proxy, so Prometheus needs no MLflow credentials, and open only to the namespaces
 * the NetworkPolicy names.
 */
export function metricsPart(scope: Construct, image: string): ServerPart {
  const volume = kplus.Volume.fromEmptyDir(scope, 'metrics', 'metrics');
  return {
    args: ['--expose-prometheus', METRICS_DIR],
    mounts: [{ path: METRICS_DIR, volume }],
    sidecars: [{
      name: 'metrics',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: ['python', '-c', metricsListenerProgram()],
      ports: [{ name: 'metrics', number: METRICS_PORT }],
      envVariables: {
        METRICS_DIR: kplus.EnvValue.fromValue(METRICS_DIR),
        METRICS_PORT: kplus.EnvValue.fromValue(String(METRICS_PORT)),
        PYTHONDONTWRITEBYTECODE: kplus.EnvValue.fromValue('1'),
      },
      securityContext: restrictedContainer(LISTENER_UID),
      resources: resources(10, 48, 200, 128),
      volumeMounts: [{ path: METRICS_DIR, volume, readOnly: true }],
      // No readiness probe: a slow listener must not take the server out of its Service. The liveness
      // probe asks from inside the pod: the NetworkPolicy admits only scrapers to this port, not the node.
      liveness: kplus.Probe.fromCommand(['python', '-c', `import urllib.request; urllib.request.urlopen('http://127.0.0.1:${METRICS_PORT}/metrics', timeout=4)`], {
        periodSeconds: Duration.seconds(30), failureThreshold: 3, timeoutSeconds: Duration.seconds(5),
      }),
    }],
  };
}
