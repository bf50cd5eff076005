import * as kplus from 'cdk8s-plus-28';
import { LIBRARY_VERSION, PartLabels } from './labels';

/** What every part of a stack knows about the stack it belongs to. */
export interface StackContext {
  /** The stack's name: prefix of object names and the `app.kubernetes.io/instance` label. */
  readonly instance: string;
  /** Namespace of every object. */
  readonly namespace: string;
  /** DNS suffix of the cluster, used in in-cluster host names. */
  readonly clusterDomain: string;
  /** The Secret every container reads its credentials from (see `SecretKeys`). */
  readonly secret: kplus.ISecret;
}

/** The in-cluster DNS name of a Service of the stack. */
export function serviceHost(context: StackContext, serviceName: string): string {
  return `${serviceName}.${context.namespace}.svc.${context.clusterDomain}`;
}

/** Labels of one part of the stack; `version` defaults to the library's (objects that run no image). */
export function partLabels(context: StackContext, appName: string, component: string, version: string = LIBRARY_VERSION): PartLabels {
  return new PartLabels(context.instance, appName, component, version);
}

/** Metadata of a part's object: its name, the stack's namespace, the part's labels. */
export function metadataOf(context: StackContext, name: string, labels: PartLabels) {
  return { name, namespace: context.namespace, labels: labels.all };
}
