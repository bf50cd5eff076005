/** Credentials and connection settings, as values. Every field ends up in the credentials Secret. */
export interface CredentialValues {
  /** PostgreSQL user. */
  readonly postgresUser: string;
  /** PostgreSQL password; any printable characters. */
  readonly postgresPassword: string;
  /** PostgreSQL database name. */
  readonly postgresDb: string;
  /** S3 access key; with in-cluster MinIO also MinIO's root user (at least 3 characters). */
  readonly awsAccessKeyId: string;
  /** S3 secret key; with in-cluster MinIO also MinIO's root password (at least 8 characters). */
  readonly awsSecretAccessKey: string;
  /** Where artifacts go: `s3://<bucket>/<prefix>`. */
  readonly artifactRoot: string;
  /**
   * An external S3-compatible endpoint, with scheme. When set, no in-cluster MinIO is deployed.
   * @default - none: in-cluster MinIO, or AWS S3 with `ArtifactStore.s3()`
   */
  readonly s3EndpointUrl?: string;
  /**
   * S3 region.
   * @default 'us-east-1'
   */
  readonly awsRegion?: string;
  /**
   * MLflow admin user for basic auth (the name clients put in MLFLOW_TRACKING_USERNAME).
   * @default 'admin' when `adminPassword` is set
   */
  readonly adminUsername?: string;
  /**
   * MLflow admin password (at least 12 characters). Setting it turns basic auth on by default.
   * @default - none: no authentication unless `auth.enabled`
   */
  readonly adminPassword?: string;
  /**
   * The Flask secret key every server replica shares (CSRF protection under basic auth).
   * @default - derived from the other credentials, so it is stable across synths
   */
  readonly flaskSecretKey?: string;
  /**
   * The passphrase that encrypts the AI gateway's stored provider keys; setting it turns the gateway
   * on. Generate it once (`openssl rand -base64 32`) and keep it.
   * @default - none: the gateway is off
   */
  readonly kekPassphrase?: string;
  /**
   * The passphrase's version; `mlflow crypto rotate-kek` raises it by one.
   * @default '1'
   */
  readonly kekVersion?: string;
  /**
   * Single sign-on: the client secret registered at the OpenID Connect provider.
   * @default - none: single sign-on cannot be turned on
   */
  readonly ssoClientSecret?: string;
  /**
   * Single sign-on: the session cookie key, 16, 24 or 32 random bytes or their base64 (`openssl rand -base64 32`).
   * @default - none: single sign-on cannot be turned on
   */
  readonly ssoCookieSecret?: string;
}
