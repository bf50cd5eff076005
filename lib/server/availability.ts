import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { metadataOf, StackContext } from '../kit/context';
import { PartLabels } from '../kit/labels';
import { checkInteger } from '../kit/settings';

/** HorizontalPodAutoscaler settings for the tracking server. */
export interface AutoscalingOptions {
  /**
   * Fewest pods.
   * @default 2
   * @minimum 1
   * @maximum 100
   */
  readonly minReplicas?: number;
  /**
   * Most pods.
   * @minimum 1
   * @maximum 100
   */
  readonly maxReplicas: number;
  /**
   * Average CPU use, in percent of the request, that the autoscaler aims for.
   * @default 70
   * @minimum 1
   * @maximum 100
   */
  readonly cpuUtilizationPercent?: number;
}

export interface ServerAvailabilityProps {
  readonly context: StackContext;
  /** The tracking server's Deployment. */
  readonly deployment: kplus.Deployment;
  /** The server's labels. */
  readonly labels: PartLabels;
  /** The fixed number of replicas, when not autoscaled. */
  readonly replicas: number;
  /** Autoscaling, when wanted. */
  readonly autoscaling?: AutoscalingOptions;
}

/**
 * Keeps more than one server pod up through node drains and failures: a PodDisruptionBudget that
 * lets one go at a time, and optionally a CPU autoscaler (which then owns the replica count).
 */
export class ServerAvailability extends Construct {
  /** The fewest pods the server runs; with two or more, the pods are spread over nodes. */
  public readonly minReplicas: number;

  public constructor(scope: Construct, id: string, props: ServerAvailabilityProps) {
    super(scope, id);
    const { context, labels, autoscaling } = props;
    const metadata = metadataOf(context, context.instance, labels);
    this.minReplicas = props.replicas;
    if (autoscaling) {
      this.minReplicas = checkInteger('server.autoscaling.minReplicas', autoscaling.minReplicas ?? 2);
      const maxReplicas = checkInteger('server.autoscaling.maxReplicas', autoscaling.maxReplicas, this.minReplicas);
      const cpu = checkInteger('server.autoscaling.cpuUtilizationPercent', autoscaling.cpuUtilizationPercent ?? 70);
      new kplus.HorizontalPodAutoscaler(this, 'autoscaler', {
        metadata,
        target: props.deployment,
        minReplicas: this.minReplicas,
        maxReplicas,
        metrics: [kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(cpu))],
      });
    }
    if (this.minReplicas < 2) return;
    new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
      metadata,
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: labels.selector } },
    });
  }
}
