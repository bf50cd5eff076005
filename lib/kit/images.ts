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
  /** MinIO client, used by the bucket Job. */
  public static readonly MINIO_CLIENT = 'quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z';

  private constructor() {}
}
