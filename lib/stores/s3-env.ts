import * as kplus from 'cdk8s-plus-28';
import { SecretKeys } from '../credentials/secret-keys';
import { ArtifactStoreConnection } from './artifact-store';

/**
 * The environment an S3 client (boto3 in MLflow, `mc` in the jobs) needs, every value read from the
 * credentials Secret so that no credential appears in a manifest.
 */
export function s3Env(secret: kplus.ISecret, connection: ArtifactStoreConnection): Record<string, kplus.EnvValue> {
  const env: Record<string, kplus.EnvValue> = {
    AWS_ACCESS_KEY_ID: secret.envValue(SecretKeys.AWS_ACCESS_KEY_ID),
    AWS_SECRET_ACCESS_KEY: secret.envValue(SecretKeys.AWS_SECRET_ACCESS_KEY),
    AWS_DEFAULT_REGION: secret.envValue(SecretKeys.AWS_DEFAULT_REGION, { optional: true }),
  };
  if (connection.endpointUrl !== undefined) env.MLFLOW_S3_ENDPOINT_URL = secret.envValue(SecretKeys.MLFLOW_S3_ENDPOINT_URL);
  if (connection.ignoreTls) env.MLFLOW_S3_IGNORE_TLS = kplus.EnvValue.fromValue('true');
  return env;
}
