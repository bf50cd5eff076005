/**
 * The keys of the credentials Secret. They are also the `.env` keys, so one name means one thing
 * from the file to the container.
 */
export class SecretKeys {
  /** PostgreSQL user (the in-cluster database is created with it). */
  public static readonly POSTGRES_USER = 'POSTGRES_USER';
  /** PostgreSQL password. */
  public static readonly POSTGRES_PASSWORD = 'POSTGRES_PASSWORD';
  /** PostgreSQL (or MySQL) database name. */
  public static readonly POSTGRES_DB = 'POSTGRES_DB';
  /** S3 access key; the in-cluster MinIO's root user, SeaweedFS's admin. */
  public static readonly AWS_ACCESS_KEY_ID = 'AWS_ACCESS_KEY_ID';
  /** S3 secret key; the in-cluster MinIO's root password, SeaweedFS's admin secret. */
  public static readonly AWS_SECRET_ACCESS_KEY = 'AWS_SECRET_ACCESS_KEY';
  /** S3 region. */
  public static readonly AWS_DEFAULT_REGION = 'AWS_DEFAULT_REGION';
  /** Where artifacts go: `s3://<bucket>/<prefix>`. */
  public static readonly MLFLOW_S3_ARTIFACT_ROOT = 'MLFLOW_S3_ARTIFACT_ROOT';
  /** The S3 endpoint, with scheme; absent for AWS S3. */
  public static readonly MLFLOW_S3_ENDPOINT_URL = 'MLFLOW_S3_ENDPOINT_URL';
  /** Basic auth: the admin user, also what clients set. */
  public static readonly MLFLOW_TRACKING_USERNAME = 'MLFLOW_TRACKING_USERNAME';
  /** Basic auth: the admin password, also what clients set. */
  public static readonly MLFLOW_TRACKING_PASSWORD = 'MLFLOW_TRACKING_PASSWORD';
  /** Basic auth: the Flask secret key shared by every replica. */
  public static readonly MLFLOW_FLASK_SERVER_SECRET_KEY = 'MLFLOW_FLASK_SERVER_SECRET_KEY';
  /** AI gateway: the passphrase that encrypts stored provider keys (keep it: without it they cannot be decrypted). */
  public static readonly MLFLOW_CRYPTO_KEK_PASSPHRASE = 'MLFLOW_CRYPTO_KEK_PASSPHRASE';
  /** AI gateway: the passphrase's version, raised by `mlflow crypto rotate-kek` (default 1). */
  public static readonly MLFLOW_CRYPTO_KEK_VERSION = 'MLFLOW_CRYPTO_KEK_VERSION';
  /** Single sign-on: the client secret registered at the OpenID Connect provider. */
  public static readonly OAUTH2_PROXY_CLIENT_SECRET = 'OAUTH2_PROXY_CLIENT_SECRET';
  /** Single sign-on: the key that signs and encrypts session cookies (16, 24 or 32 bytes, or their base64). */
  public static readonly OAUTH2_PROXY_COOKIE_SECRET = 'OAUTH2_PROXY_COOKIE_SECRET';
  /** Basic auth: MLflow's auth configuration file (it holds the database URI, so it is a Secret). */
  public static readonly AUTH_CONFIG_FILE = 'basic_auth.ini';
  /** Assembled by the stack: `postgresql+psycopg2://user:password@host:port/db`, percent-encoded. */
  public static readonly MLFLOW_BACKEND_STORE_URI = 'MLFLOW_BACKEND_STORE_URI';

  private constructor() {}
}
