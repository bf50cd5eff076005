/** This library's version: the `app.kubernetes.io/version` of objects that run no image. */
export const LIBRARY_VERSION = '0.1.0';

/**
 * The recommended `app.kubernetes.io/*` labels of one part (component) of a stack instance.
 * `version` goes on objects and pod templates but never into a selector, which is immutable.
 */
export class PartLabels {
  /** Labels that select the part's pods; they never change between synths or library versions. */
  public readonly selector: Record<string, string>;
  /** Labels for every object of the part: the selector labels plus version and ownership. */
  public readonly all: Record<string, string>;

  public constructor(
    private readonly instance: string,
    public readonly appName: string,
    public readonly component: string,
    version: string,
  ) {
    this.selector = {
      'app.kubernetes.io/name': appName,
      'app.kubernetes.io/instance': instance,
      'app.kubernetes.io/component': component,
    };
    this.all = {
      ...this.selector,
      'app.kubernetes.io/version': version.slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, ''),
      'app.kubernetes.io/part-of': 'mlflow',
      'app.kubernetes.io/managed-by': 'cdk8s',
    };
  }

  /** The same part's labels with another version (objects about the part that run no image of it). */
  public atVersion(version: string): PartLabels {
    return new PartLabels(this.instance, this.appName, this.component, version);
  }
}

/** The tag of an image reference (`repo:tag` or `repo@sha256:...`), used as the version label. */
export function imageVersion(image: string): string {
  const digest = image.indexOf('@');
  if (digest >= 0) return image.slice(digest + 1 + 'sha256:'.length, digest + 1 + 'sha256:'.length + 12);
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon >= 0 ? image.slice(colon + 1) : 'unversioned';
}
