import { Duration } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ServiceMonitor } from '../../imports/monitoring.coreos.com';
import { metadataOf, partLabels, StackContext } from '../kit/context';
import { imageVersion } from '../kit/labels';
import { METRICS_PORT } from './metrics';
import { TrackingServer } from './tracking-server';

export interface ServerMonitorProps {
  readonly context: StackContext;
  /** The tracking server: its pods' labels and image. */
  readonly server: TrackingServer;
  /** Emit the ServiceMonitor (prometheus-operator's CRD must be in the cluster). */
  readonly serviceMonitor: boolean;
  /** Scrape interval. */
  readonly interval: Duration;
}

/**
 * The server's metrics port as a headless Service of its own, `<name>-metrics` (never on the
 * NodePort Service, so never on a node's port), and a ServiceMonitor that scrapes it. The listener
 * on that port asks for no credentials; the NetworkPolicy decides who reaches it.
 */
export class ServerMonitor extends Construct {
  /** The metrics Service's name: prometheus-operator's `job` label of the server's targets. */
  public readonly serviceName: string;

  public constructor(scope: Construct, id: string, props: ServerMonitorProps) {
    super(scope, id);
    const { context, server } = props;
    this.serviceName = `${context.instance}-metrics`;
    const labels = partLabels(context, 'mlflow', 'metrics', imageVersion(server.image));
    new k8s.KubeService(this, 'service', {
      metadata: metadataOf(context, this.serviceName, labels),
      spec: {
        clusterIp: 'None',
        selector: server.labels.selector,
        ports: [{ name: 'metrics', port: METRICS_PORT, targetPort: k8s.IntOrString.fromString('metrics') }],
      },
    });
    if (!props.serviceMonitor) return;
    new ServiceMonitor(this, 'monitor', {
      metadata: metadataOf(context, context.instance, labels),
      spec: {
        selector: { matchLabels: labels.selector },
        namespaceSelector: { matchNames: [context.namespace] },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: `${props.interval.toSeconds()}s` }],
      },
    });
  }
}
