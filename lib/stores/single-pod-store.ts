import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { metadataOf, serviceHost, StackContext } from '../kit/context';
import { PartLabels } from '../kit/labels';
import { addPodSpecFields, podMetadata, PodOptions } from '../kit/pods';
import { kubeResources, kubeSize } from '../kit/resources';
import { restrictedContainerSpec, restrictedPodSpec } from '../kit/security';
import { checkDnsSubdomain } from '../kit/validate';

/** One named TCP port of a store. */
export interface StorePort {
  readonly name: string;
  readonly port: number;
}

export interface SinglePodStoreProps {
  readonly context: StackContext;
  readonly labels: PartLabels;
  /** The Service and StatefulSet name. */
  readonly name: string;
  /** Ports of the container and the Service; the first is the one clients use. */
  readonly ports: StorePort[];
  /** A headless Service (the pod's own address) instead of a ClusterIP. */
  readonly headless: boolean;
  /** The uid (and gid, fsGroup) the store runs as. */
  readonly uid: number;
  /** The container, without the settings every store shares (name, image policy, ports, security, resources). */
  readonly container: Omit<k8s.Container, 'name' | 'ports' | 'securityContext' | 'resources' | 'imagePullPolicy'>;
  readonly containerName: string;
  readonly resources: kplus.ContainerResources;
  /** Scratch volumes besides the data volume. */
  readonly volumes: k8s.Volume[];
  /** The data volume's size, StorageClass and the prop that named the class (for errors). */
  readonly storage: Size;
  readonly storageClassName?: string;
  readonly storageClassProp: string;
  /** @default - Kubernetes' default (30 s) */
  readonly terminationGracePeriodSeconds?: number;
  /** The pod settings (the stack's with the store's own over them). */
  readonly pods: PodOptions;
}

/**
 * What PostgreSQL and MinIO share: one pod of a StatefulSet whose data volume outlives the stack
 * (claims are retained on delete and scale-down), restricted security, no service-account token,
 * no service links, and a Service in front.
 */
export class SinglePodStore extends Construct {
  /** In-cluster host name of the store. */
  public readonly host: string;
  /** The StatefulSet. */
  public readonly statefulSet: k8s.KubeStatefulSet;

  public constructor(scope: Construct, id: string, props: SinglePodStoreProps) {
    super(scope, id);
    const { context, labels } = props;
    if (props.storageClassName !== undefined) checkDnsSubdomain(props.storageClassName, props.storageClassProp);
    this.host = serviceHost(context, props.name);
    const metadata = metadataOf(context, props.name, labels);

    new k8s.KubeService(this, 'service', {
      metadata,
      spec: {
        ...(props.headless ? { clusterIp: 'None' } : { type: 'ClusterIP' }),
        selector: labels.selector,
        ports: props.ports.map(({ name, port }) => ({ name, port, targetPort: k8s.IntOrString.fromString(name) })),
      },
    });

    this.statefulSet = new k8s.KubeStatefulSet(this, 'statefulset', {
      metadata,
      spec: {
        serviceName: props.name,
        replicas: 1,
        selector: { matchLabels: labels.selector },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: podMetadata(labels, props.pods),
          spec: {
            securityContext: restrictedPodSpec(props.uid),
            enableServiceLinks: false,
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: props.terminationGracePeriodSeconds,
            containers: [{
              ...props.container,
              name: props.containerName,
              imagePullPolicy: 'IfNotPresent',
              ports: props.ports.map(({ name, port }) => ({ name, containerPort: port })),
              securityContext: restrictedContainerSpec(props.uid),
              resources: kubeResources(props.resources),
            }],
            volumes: props.volumes,
          },
        },
        volumeClaimTemplates: [{
          // Claim templates are immutable: only labels that never change belong here.
          metadata: { name: 'data', labels: labels.selector },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: kubeSize(props.storage) } },
          },
        }],
      },
    });
    addPodSpecFields(this.statefulSet, '/spec/template', props.pods);
  }
}
