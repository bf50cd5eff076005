import * as kplus from 'cdk8s-plus-28';
import { ArtifactStoreConnection } from './artifact-store';
import { SecretKeys } from './secret-keys';

/**
 * The environment an S3 client (boto3 in MLflow, `mc` in the bucket Job) needs, every value read
 * from the credentials Secret so that no credential appears in a manifest.
 */
export function s3Env(secret: kplus.ISecret, connection: ArtifactStoreConnection): Record<string, kplus.EnvValue> {
  const fromSecret = (key: string, optional = false) => kplus.EnvValue.fromSecretValue({ secret, key }, { optional });
  const env: Record<string, kplus.EnvValue> = {
    AWS_ACCESS_KEY_ID: fromSecret(SecretKeys.AWS_ACCESS_KEY_ID),
    AWS_SECRET_ACCESS_KEY: fromSecret(SecretKeys.AWS_SECRET_ACCESS_KEY),
    AWS_DEFAULT_REGION: fromSecret(SecretKeys.AWS_DEFAULT_REGION, true),
  };
  if (connection.endpointUrl !== undefined) env.MLFLOW_S3_ENDPOINT_URL = fromSecret(SecretKeys.MLFLOW_S3_ENDPOINT_URL);
  if (connection.ignoreTls) env.MLFLOW_S3_IGNORE_TLS = kplus.EnvValue.fromValue('true');
  return env;
}
