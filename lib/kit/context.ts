import * as kplus from 'cdk8s-plus-28';
import { ImageOptions, mirroredImage } from './images';
import { LIBRARY_VERSION, PartLabels } from './labels';
import { PodOptions, podSettings } from './pods';

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
  /** Pod settings for every pod of the stack (checked), under each part's own. */
  readonly pods?: PodOptions;
  /** Where the default images are pulled from (checked). */
  readonly images?: ImageOptions;
}

/** A default image (DefaultImages), from the mirror the stack's `images` names, if any. */
export function defaultImage(context: StackContext, image: string): string {
  return mirroredImage(image, context.images);
}

/** The pod settings of one part: the stack's, with the part's own (`part`, given at `key`) over them. */
export function partPods(context: StackContext, part: PodOptions | undefined, key: string): PodOptions {
  return podSettings(context.pods, part, key);
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
