/** What a store needs to know about the stack it joins. */
export interface StoreContext {
  /** Namespace of every object. */
  readonly namespace: string;
  /** The stack's name: prefix of object names and the `app.kubernetes.io/instance` label. */
  readonly instance: string;
  /** Name of the Secret holding the credentials (see `SecretKeys`). */
  readonly secretName: string;
  /** DNS suffix of the cluster, used in in-cluster host names. */
  readonly clusterDomain: string;
}

/** The in-cluster DNS name of a Service. */
export function serviceHost(context: StoreContext, serviceName: string): string {
  return `${serviceName}.${context.namespace}.svc.${context.clusterDomain}`;
}
