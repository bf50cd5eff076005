import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { PartLabels } from './labels';
import { StoreContext } from './store-context';
import type { AutoscalingOptions } from './tracking-server';
import { checkIntegerInRange } from './validate';

export interface ServerAvailabilityProps {
  /** The stack the server belongs to. */
  readonly context: StoreContext;
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
 * Keeps more than one server pod up through node drains and failures: pods spread over nodes,
 * a PodDisruptionBudget that lets one go at a time, and optionally a CPU autoscaler.
 */
export class ServerAvailability extends Construct {
  public constructor(scope: Construct, id: string, props: ServerAvailabilityProps) {
    super(scope, id);
    const { context, deployment, labels, autoscaling } = props;
    const metadata = { name: context.instance, namespace: context.namespace, labels: labels.all };
    let minReplicas = props.replicas;
    if (autoscaling) {
      minReplicas = checkIntegerInRange(autoscaling.minReplicas ?? 2, 'server.autoscaling.minReplicas', 1, 100);
      const maxReplicas = checkIntegerInRange(autoscaling.maxReplicas, 'server.autoscaling.maxReplicas', minReplicas, 100);
      const cpu = checkIntegerInRange(autoscaling.cpuUtilizationPercent ?? 70, 'server.autoscaling.cpuUtilizationPercent', 1, 100);
      new k8s.KubeHorizontalPodAutoscalerV2(this, 'autoscaler', {
        metadata,
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: context.instance },
          minReplicas,
          maxReplicas,
          metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: cpu } } }],
        },
      });
      // The autoscaler owns the replica count; a count in the manifest would reset it on every apply.
      ApiObject.of(deployment).addJsonPatch(JsonPatch.remove('/spec/replicas'));
    }
    if (minReplicas < 2) return;

    ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/topologySpreadConstraints', [{
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: labels.selector },
    }]));
    new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
      metadata,
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: labels.selector } },
    });
  }
}
