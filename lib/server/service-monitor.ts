import { Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { ServiceMonitor } from '../../imports/monitoring.coreos.com';
import { SecretKeys } from '../credentials/secret-keys';
import { metadataOf, StackContext } from '../kit/context';
import { TrackingServer } from './tracking-server';

export interface ServerMonitorProps {
  readonly context: StackContext;
  /** The tracking server: its labels (the Service carries them) and whether basic auth is on. */
  readonly server: TrackingServer;
  /** Basic auth is on: /metrics then needs the admin credentials from the Secret. */
  readonly auth: boolean;
  /** Scrape interval. */
  readonly interval: Duration;
}

/** A ServiceMonitor that scrapes `/metrics` on the tracking server's Service. */
export class ServerMonitor extends Construct {
  public constructor(scope: Construct, id: string, props: ServerMonitorProps) {
    super(scope, id);
    const { context, server } = props;
    const secretName = context.secret.name;
    new ServiceMonitor(this, 'monitor', {
      metadata: metadataOf(context, context.instance, server.labels),
      spec: {
        selector: { matchLabels: server.labels.selector },
        namespaceSelector: { matchNames: [context.namespace] },
        endpoints: [{
          port: 'http',
          path: '/metrics',
          interval: `${props.interval.toSeconds()}s`,
          basicAuth: props.auth
            ? {
              username: { name: secretName, key: SecretKeys.MLFLOW_TRACKING_USERNAME },
              password: { name: secretName, key: SecretKeys.MLFLOW_TRACKING_PASSWORD },
            }
            : undefined,
        }],
      },
    });
  }
}
