import { k8s } from 'cdk8s-plus-28';
import { CredentialValues } from '../credentials/credential-values';
import { PartLabels } from '../kit/labels';

/** A store whose server runs in the stack: what NetworkPolicies and other parts need of its pods. */
export interface InClusterPart {
  /** Its pods' labels (the selector picks them). */
  readonly labels: PartLabels;
  /** Short name of the part (`postgres`, `minio`), used in the names of objects about it. */
  readonly name: string;
  /** Its StatefulSet. */
  readonly statefulSet: k8s.KubeStatefulSet;
}

/** An S3 server the stack runs itself (MinIO, SeaweedFS), as its construct describes it. */
export interface InClusterS3Server {
  /** The S3 endpoint inside the cluster, with scheme. */
  readonly endpointUrl: string;
  /** The S3 port. */
  readonly port: number;
  /** What the summary line calls it. */
  readonly displayName: string;
  /** Its pods. */
  readonly part: InClusterPart;
  /** Its own rule for the S3 credentials, if it has one (see ArtifactStoreConnection). */
  readonly checkCredentials?: (values: CredentialValues, source: string) => void;
}
