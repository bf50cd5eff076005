import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { metadataOf, StackContext } from '../kit/context';
import { LIBRARY_VERSION, PartLabels } from '../kit/labels';
import { ArtifactStoreConnection } from '../stores/artifact-store';
import { BackendStoreConnection } from '../stores/backend-store';

/** NetworkPolicies for every pod of the stack. */
export interface NetworkPolicyOptions {
  /**
   * Turn the policies on or off. They need a network plugin that enforces them.
   * @default true
   */
  readonly enabled?: boolean;
}

/** The parts of the stack, as NetworkPolicies need them: what selects their pods, and their ports. */
export interface NetworkPoliciesProps {
  readonly context: StackContext;
  /** The server: its pods' labels and the pod port its traffic arrives on. */
  readonly server: { readonly labels: PartLabels; readonly podPort: number };
  readonly bucketJob: { readonly labels: PartLabels };
  /** Present when the CronJob exists. */
  readonly garbageCollection?: { readonly labels: PartLabels };
  readonly backup?: { readonly labels: PartLabels };
  readonly backendStore: BackendStoreConnection;
  readonly artifactStore: ArtifactStoreConnection;
  /** With single sign-on: the OpenID Connect provider's port, which the server pod must reach. */
  readonly identityProviderPort?: number;
  /** With metrics: the server pod's metrics port, and the namespaces that may scrape it (undefined: every namespace). */
  readonly metrics?: { readonly port: number; readonly scrapeFrom?: string[] };
}

const DNS: k8s.NetworkPolicyEgressRule = {
  ports: [{ port: k8s.IntOrString.fromNumber(53), protocol: 'UDP' }, { port: k8s.IntOrString.fromNumber(53), protocol: 'TCP' }],
};
// Any address, and any pod: an ipBlock is meant for addresses outside the cluster, and some plugins (Cilium,
// netpol-analyzer's reading) never match a pod's address with it, so an in-cluster "external" host such as
// another team's PostgreSQL Service needs the namespaceSelector.
const ANYWHERE: k8s.NetworkPolicyPeer[] = [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }, { namespaceSelector: {} }];
const tcp = (port: number): k8s.NetworkPolicyPort => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' });
const pods = (labels: PartLabels): k8s.NetworkPolicyPeer => ({ podSelector: { matchLabels: labels.selector } });

/**
 * Default-deny for every pod of the stack, then only the paths it needs: the tracking server takes
 * traffic on its port from anywhere (NodePort, Ingress, probes) and talks to the database and S3;
 * PostgreSQL takes only the server (and its migration step), gc and the backup job; MinIO takes
 * only the server, the bucket Job, the backup job and gc. Every pod may resolve DNS.
 */
export class NetworkPolicies extends Construct {
  public constructor(scope: Construct, id: string, props: NetworkPoliciesProps) {
    super(scope, id);
    const { server, bucketJob, garbageCollection: gc, backup, backendStore: db, artifactStore: s3 } = props;
    // An in-cluster store is reached by its pods' labels; an external one by its port, anywhere.
    const toDatabase: k8s.NetworkPolicyEgressRule = { to: db.inCluster ? [pods(db.inCluster.labels)] : ANYWHERE, ports: [tcp(db.port)] };
    const toS3: k8s.NetworkPolicyEgressRule = { to: s3.inCluster ? [pods(s3.inCluster.labels)] : ANYWHERE, ports: [tcp(s3.port)] };
    const toServer: k8s.NetworkPolicyEgressRule = { to: [pods(server.labels)], ports: [tcp(server.podPort)] };
    const toProvider: k8s.NetworkPolicyEgressRule[] = props.identityProviderPort ? [{ to: ANYWHERE, ports: [tcp(props.identityProviderPort)] }] : [];
    const from = (...parts: Array<{ labels: PartLabels } | undefined>): k8s.NetworkPolicyPeer[] =>
      parts.flatMap((part) => (part ? [pods(part.labels)] : []));

    const policy = (name: string, labels: PartLabels, ingress: k8s.NetworkPolicyIngressRule[], egress: k8s.NetworkPolicyEgressRule[]) =>
      new k8s.KubeNetworkPolicy(this, name, {
        metadata: metadataOf(props.context, `${props.context.instance}-${name}`, labels.atVersion(LIBRARY_VERSION)),
        // With both policy types listed, a missing ingress list denies all ingress.
        spec: { podSelector: { matchLabels: labels.selector }, policyTypes: ['Ingress', 'Egress'], ingress, egress },
      });

    // The metrics port asks for no credentials: only pods of the namespaces named may scrape it.
    const scrapers: k8s.NetworkPolicyIngressRule[] = props.metrics ? [{
      from: props.metrics.scrapeFrom
        ? props.metrics.scrapeFrom.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } }))
        : [{ namespaceSelector: {} }],
      ports: [tcp(props.metrics.port)],
    }] : [];
    policy('tracking-server', server.labels, [{ ports: [tcp(server.podPort)] }, ...scrapers], [DNS, toDatabase, toS3, ...toProvider]);
    policy('bucket-job', bucketJob.labels, [], [DNS, toS3]);
    if (gc) policy('gc', gc.labels, [], [DNS, toDatabase, toServer, toS3]);
    if (backup) policy('backup', backup.labels, [], [DNS, toDatabase, toS3]);
    if (db.inCluster) policy(db.inCluster.name, db.inCluster.labels, [{ from: from(server, gc, backup), ports: [tcp(db.port)] }], [DNS]);
    // gc deletes artifacts itself when they are not served through the tracking server.
    if (s3.inCluster) policy(s3.inCluster.name, s3.inCluster.labels, [{ from: from(server, bucketJob, backup, gc), ports: [tcp(s3.port)] }], [DNS]);
  }
}
