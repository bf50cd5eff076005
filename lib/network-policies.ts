import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStoreConnection } from './artifact-store';
import { BackendStoreConnection } from './backend-store';
import { LIBRARY_VERSION, partLabels } from './labels';
import { StoreContext } from './store-context';

type Labels = { [key: string]: string };

/** The pods of the stack, by role, as NetworkPolicies need them. */
export interface NetworkPoliciesProps {
  /** The stack the policies belong to. */
  readonly context: StoreContext;
  /** Labels of every pod of the stack (they select the pods a policy isolates). */
  readonly tracking: Labels;
  readonly bucketJob: Labels;
  /** Present when the CronJob exists. */
  readonly garbageCollection?: Labels;
  readonly backup?: Labels;
  /** How the database and the artifact store are reached; their pod labels when in the cluster. */
  readonly backendStore: BackendStoreConnection;
  readonly artifactStore: ArtifactStoreConnection;
  /** The tracking server's port. */
  readonly serverPort: number;
}

const DNS: k8s.NetworkPolicyEgressRule = {
  ports: [{ port: k8s.IntOrString.fromNumber(53), protocol: 'UDP' }, { port: k8s.IntOrString.fromNumber(53), protocol: 'TCP' }],
};
const ANYWHERE: k8s.NetworkPolicyPeer[] = [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }];
const tcp = (port: number): k8s.NetworkPolicyPort => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' });

/**
 * Default-deny for every pod of the stack, then only the paths it needs: the tracking server takes
 * traffic on its port from anywhere (NodePort, Ingress, probes) and talks to PostgreSQL and S3;
 * PostgreSQL takes only the server, the migration step (same pod) and the backup job; MinIO takes
 * only the server, the bucket Job, the backup job and gc. Every pod may resolve DNS.
 */
export class NetworkPolicies extends Construct {
  private readonly context: StoreContext;

  public constructor(scope: Construct, id: string, props: NetworkPoliciesProps) {
    super(scope, id);
    this.context = props.context;
    const { backendStore: db, artifactStore: s3 } = props;
    const dbPort = db.port;
    const s3Port = s3.podSelector ? 9000 : s3PortOf(s3.endpointUrl);
    // An in-cluster store is reached by its pods' labels; an external one by its port, anywhere.
    const toDatabase: k8s.NetworkPolicyEgressRule = { to: db.podSelector ? [{ podSelector: { matchLabels: db.podSelector } }] : ANYWHERE, ports: [tcp(dbPort)] };
    const toS3: k8s.NetworkPolicyEgressRule = { to: s3.podSelector ? [{ podSelector: { matchLabels: s3.podSelector } }] : ANYWHERE, ports: [tcp(s3Port)] };
    const toServer: k8s.NetworkPolicyEgressRule = { to: [{ podSelector: { matchLabels: props.tracking } }], ports: [tcp(props.serverPort)] };
    const from = (...selectors: Array<Labels | undefined>): k8s.NetworkPolicyPeer[] =>
      selectors.filter((s): s is Labels => s !== undefined).map((matchLabels) => ({ podSelector: { matchLabels } }));

    this.policy('tracking-server', props.tracking, [{ ports: [tcp(props.serverPort)] }], [DNS, toDatabase, toS3]);
    this.policy('bucket-job', props.bucketJob, [], [DNS, toS3]);
    if (props.garbageCollection) this.policy('gc', props.garbageCollection, [], [DNS, toDatabase, toServer, toS3]);
    if (props.backup) this.policy('backup', props.backup, [], [DNS, toDatabase, toS3]);
    if (db.podSelector) {
      this.policy('postgres', db.podSelector, [{ from: from(props.tracking, props.garbageCollection, props.backup), ports: [tcp(dbPort)] }], [DNS]);
    }
    if (s3.podSelector) {
      // gc deletes artifacts itself when they are not served through the tracking server.
      this.policy('minio', s3.podSelector, [{ from: from(props.tracking, props.bucketJob, props.backup, props.garbageCollection), ports: [tcp(s3Port)] }], [DNS]);
    }
  }

  private policy(part: string, podLabels: Labels, ingress: k8s.NetworkPolicyIngressRule[], egress: k8s.NetworkPolicyEgressRule[]): void {
    const labels = partLabels(this.context.instance, podLabels['app.kubernetes.io/name'], podLabels['app.kubernetes.io/component'], LIBRARY_VERSION);
    new k8s.KubeNetworkPolicy(this, part, {
      metadata: { name: `${this.context.instance}-${part}`, namespace: this.context.namespace, labels: labels.all },
      // With both policy types listed, a missing ingress list denies all ingress; the server does not store an empty one.
      spec: { podSelector: { matchLabels: podLabels }, policyTypes: ['Ingress', 'Egress'], ingress: ingress.length ? ingress : undefined, egress },
    });
  }
}

/** The TCP port of an S3 endpoint URL; AWS S3 (no URL) is HTTPS. */
function s3PortOf(endpointUrl: string | undefined): number {
  if (endpointUrl === undefined) return 443;
  const url = new URL(endpointUrl);
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}
