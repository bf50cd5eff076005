/** This library's version: the `app.kubernetes.io/version` of objects that run no image. */
export const LIBRARY_VERSION = '0.1.0';

/** The `app.kubernetes.io/*` labels of one part of the stack. */
export interface PartLabels {
  /** Labels that select the part's pods; they never change between synths or library versions. */
  readonly selector: Record<string, string>;
  /** Labels for every object of the part: the selector labels plus version and ownership. */
  readonly all: Record<string, string>;
}

/**
 * Builds the recommended labels for one part (component) of a stack instance.
 *
 * `version` goes on objects and pod templates but never into a selector, which is immutable.
 */
export function partLabels(instance: string, appName: string, component: string, version: string): PartLabels {
  const selector = {
    'app.kubernetes.io/name': appName,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
  };
  return {
    selector,
    all: {
      ...selector,
      'app.kubernetes.io/version': version.slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, ''),
      'app.kubernetes.io/part-of': 'mlflow',
      'app.kubernetes.io/managed-by': 'cdk8s',
    },
  };
}

/** The tag of an image reference (`repo:tag` or `repo@sha256:...`), used as the version label. */
export function imageVersion(image: string): string {
  const digest = image.indexOf('@');
  if (digest >= 0) return image.slice(digest + 1 + 'sha256:'.length, digest + 1 + 'sha256:'.length + 12);
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon >= 0 ? image.slice(colon + 1) : 'unversioned';
}
