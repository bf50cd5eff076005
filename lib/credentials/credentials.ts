import * as fs from 'fs';
import { ConfigError } from '../kit/errors';
import { checkDnsSubdomain, checkHttpUrl, checkNonEmpty, parseS3Uri } from '../kit/validate';
import { CredentialValues } from './credential-values';
import { ENV_KEYS, valuesFromEnvText } from './env-file';
import { SecretKeys } from './secret-keys';

/**
 * Where the stack's credentials come from. Create with a static factory.
 */
export abstract class Credentials {
  /**
   * Read a `.env` file (parsed by dotenv). Required keys: POSTGRES_USER, POSTGRES_PASSWORD,
   * POSTGRES_DB, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ARTIFACT_ROOT; optional:
   * MLFLOW_S3_ENDPOINT_URL, AWS_DEFAULT_REGION, and for basic auth MLFLOW_TRACKING_USERNAME,
   * MLFLOW_TRACKING_PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY. The stack turns them into a Secret.
   */
  public static fromEnvFile(path: string): Credentials {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return new ValueCredentials(valuesFromEnvText(text, path), path);
  }

  /** Credentials given as values (for tests or apps that read them elsewhere). The stack turns them into a Secret. */
  public static fromValues(values: CredentialValues): Credentials {
    return new ValueCredentials(values, 'Credentials.fromValues');
  }

  /**
   * A Secret you create yourself (GitOps: no credential is written to `dist/`). It must hold the
   * keys the stack reads: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, AWS_ACCESS_KEY_ID,
   * AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ARTIFACT_ROOT, MLFLOW_BACKEND_STORE_URI, and, when used,
   * MLFLOW_S3_ENDPOINT_URL and AWS_DEFAULT_REGION. See the README for their values.
   */
  public static fromSecretName(secretName: string): Credentials {
    return new ExistingSecretCredentials(checkDnsSubdomain(secretName, 'Credentials.fromSecretName(secretName)'));
  }

  /** The values to write into a Secret, or undefined when the Secret already exists. */
  public abstract readonly values?: CredentialValues;
  /** The name of the existing Secret, or undefined when the stack creates it. */
  public abstract readonly existingSecretName?: string;
  /** Where the values came from, for error messages. */
  public abstract readonly source: string;
}

class ValueCredentials extends Credentials {
  public readonly values: CredentialValues;
  public readonly existingSecretName = undefined;
  public constructor(values: CredentialValues, public readonly source: string) {
    super();
    this.values = checkValues(values, source);
  }
}

class ExistingSecretCredentials extends Credentials {
  public readonly values = undefined;
  public readonly source: string;
  public constructor(public readonly existingSecretName: string) {
    super();
    this.source = `Secret ${existingSecretName}`;
  }
}

function checkValues(values: CredentialValues, source: string): CredentialValues {
  const where = (key: string) => `${source}: ${key}`;
  for (const [key, field, required] of ENV_KEYS) {
    const value = values[field];
    if (required || value !== undefined) checkNonEmpty(value, where(key));
  }
  parseS3Uri(values.artifactRoot, where(SecretKeys.MLFLOW_S3_ARTIFACT_ROOT));
  const s3EndpointUrl = values.s3EndpointUrl === undefined ? undefined : checkHttpUrl(values.s3EndpointUrl, where(SecretKeys.MLFLOW_S3_ENDPOINT_URL));
  if (values.adminPassword !== undefined && values.adminPassword.length < 12) {
    throw new ConfigError(`${where(SecretKeys.MLFLOW_TRACKING_PASSWORD)} is the MLflow admin password and must be at least 12 characters (MLflow refuses shorter ones); got ${values.adminPassword.length}`);
  }
  if (values.adminUsername !== undefined && values.adminPassword === undefined) {
    throw new ConfigError(`${where(SecretKeys.MLFLOW_TRACKING_USERNAME)} is set but ${SecretKeys.MLFLOW_TRACKING_PASSWORD} is not; basic auth needs both`);
  }
  if (values.kekPassphrase !== undefined && values.kekPassphrase.length < 16) {
    throw new ConfigError(`${where(SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE)} must be at least 16 characters (a random one: openssl rand -base64 32); got ${values.kekPassphrase.length}`);
  }
  if (values.kekVersion !== undefined && !/^[1-9][0-9]*$/.test(values.kekVersion)) {
    throw new ConfigError(`${where(SecretKeys.MLFLOW_CRYPTO_KEK_VERSION)} must be a whole number from 1 (mlflow crypto rotate-kek raises it); got ${JSON.stringify(values.kekVersion)}`);
  }
  if (values.kekVersion !== undefined && values.kekPassphrase === undefined) {
    throw new ConfigError(`${where(SecretKeys.MLFLOW_CRYPTO_KEK_VERSION)} is set but ${SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE} is not`);
  }
  if (values.ssoCookieSecret !== undefined && ![16, 24, 32].includes(values.ssoCookieSecret.length) && ![16, 24, 32].includes(Buffer.from(values.ssoCookieSecret, 'base64').length)) {
    throw new ConfigError(`${where(SecretKeys.OAUTH2_PROXY_COOKIE_SECRET)} must be 16, 24 or 32 bytes, or their base64 (openssl rand -base64 32)`);
  }
  if (values.awsRegion !== undefined && !/^[a-z0-9-]+$/.test(values.awsRegion)) {
    throw new ConfigError(`${where(SecretKeys.AWS_DEFAULT_REGION)} must be a region name such as us-east-1; got ${JSON.stringify(values.awsRegion)}`);
  }
  return { ...values, s3EndpointUrl };
}
