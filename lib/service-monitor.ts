import { Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { ServiceMonitor } from '../imports/monitoring.coreos.com';
import { PartLabels } from './labels';
import { SecretKeys } from './secret-keys';
import { StoreContext } from './store-context';

/** Prometheus metrics of the tracking server. */
export interface MetricsOptions {
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

export interface ServerMonitorProps {
  /** The stack the monitor belongs to. */
  readonly context: StoreContext;
  /** The server's labels (the Service carries them). */
  readonly labels: PartLabels;
  /** Scrape interval. */
  readonly interval: Duration;
  /** Basic auth is on: /metrics then needs the admin credentials from the Secret. */
  readonly auth: boolean;
}

/** A ServiceMonitor that scrapes `/metrics` on the tracking server's Service. */
export class ServerMonitor extends Construct {
  public constructor(scope: Construct, id: string, props: ServerMonitorProps) {
    super(scope, id);
    const { context } = props;
    new ServiceMonitor(this, 'monitor', {
      metadata: { name: context.instance, namespace: context.namespace, labels: props.labels.all },
      spec: {
        selector: { matchLabels: props.labels.selector },
        namespaceSelector: { matchNames: [context.namespace] },
        endpoints: [{
          port: 'http',
          path: '/metrics',
          interval: `${props.interval.toSeconds()}s`,
          basicAuth: props.auth
            ? {
              username: { name: context.secretName, key: SecretKeys.MLFLOW_TRACKING_USERNAME },
              password: { name: context.secretName, key: SecretKeys.MLFLOW_TRACKING_PASSWORD },
            }
            : undefined,
        }],
      },
    });
  }
}
