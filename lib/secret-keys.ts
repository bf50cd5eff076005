/**
 * The keys of the credentials Secret. They are also the `.env` keys, so one name means one thing
 * from the file to the container.
 */
export const SecretKeys = {
  POSTGRES_USER: 'POSTGRES_USER',
  POSTGRES_PASSWORD: 'POSTGRES_PASSWORD',
  POSTGRES_DB: 'POSTGRES_DB',
  AWS_ACCESS_KEY_ID: 'AWS_ACCESS_KEY_ID',
  AWS_SECRET_ACCESS_KEY: 'AWS_SECRET_ACCESS_KEY',
  AWS_DEFAULT_REGION: 'AWS_DEFAULT_REGION',
  MLFLOW_S3_ARTIFACT_ROOT: 'MLFLOW_S3_ARTIFACT_ROOT',
  MLFLOW_S3_ENDPOINT_URL: 'MLFLOW_S3_ENDPOINT_URL',
  /** Assembled by the stack: `postgresql+psycopg2://user:password@host:port/db`, percent-encoded. */
  MLFLOW_BACKEND_STORE_URI: 'MLFLOW_BACKEND_STORE_URI',
} as const;
