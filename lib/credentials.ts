import * as fs from 'fs';
import * as dotenv from 'dotenv';
import { ConfigError } from './errors';
import { SecretKeys } from './secret-keys';
import { checkHttpUrl, checkNonEmpty, checkDnsSubdomain, parseS3Uri } from './validate';

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
}

/** Maps each `.env` key to the field it fills and whether it is required. */
const ENV_KEYS: ReadonlyArray<[string, keyof CredentialValues, boolean]> = [
  [SecretKeys.POSTGRES_USER, 'postgresUser', true],
  [SecretKeys.POSTGRES_PASSWORD, 'postgresPassword', true],
  [SecretKeys.POSTGRES_DB, 'postgresDb', true],
  [SecretKeys.AWS_ACCESS_KEY_ID, 'awsAccessKeyId', true],
  [SecretKeys.AWS_SECRET_ACCESS_KEY, 'awsSecretAccessKey', true],
  [SecretKeys.MLFLOW_S3_ARTIFACT_ROOT, 'artifactRoot', true],
  [SecretKeys.MLFLOW_S3_ENDPOINT_URL, 's3EndpointUrl', false],
  [SecretKeys.AWS_DEFAULT_REGION, 'awsRegion', false],
  [SecretKeys.MLFLOW_TRACKING_USERNAME, 'adminUsername', false],
  [SecretKeys.MLFLOW_TRACKING_PASSWORD, 'adminPassword', false],
  [SecretKeys.MLFLOW_FLASK_SERVER_SECRET_KEY, 'flaskSecretKey', false],
];

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

/** Parses `.env` text into credential values; errors name the key and the file. */
function valuesFromEnvText(text: string, file: string): CredentialValues {
  checkEnvSyntax(text, file);
  const parsed = dotenv.parse(text);
  const values: Record<string, string> = {};
  for (const [key, field, required] of ENV_KEYS) {
    const value = parsed[key];
    if (required) {
      if (value === undefined) {
        throw new ConfigError(`${file}: required key ${key} is missing (required: ${requiredKeys().join(', ')})`);
      }
      values[field] = checkNonEmpty(value, `${file}: ${key}`);
    } else if (value !== undefined && value.trim() !== '') {
      values[field] = value;
    }
  }
  return values as unknown as CredentialValues;
}

function requiredKeys(): string[] {
  return ENV_KEYS.filter(([, , required]) => required).map(([key]) => key);
}

/**
 * dotenv skips lines it cannot parse without a word; a typo would then look like a missing key.
 * This finds such lines first and names them.
 */
function checkEnvSyntax(text: string, file: string): void {
  const lines = text.split(/\r?\n/);
  let openQuote: { quote: string; line: number } | undefined;
  lines.forEach((line, index) => {
    if (openQuote) {
      if (line.includes(openQuote.quote)) openQuote = undefined;
      return;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s?(.*)$/.exec(trimmed);
    if (!match) {
      throw new ConfigError(`${file} line ${index + 1}: not a KEY=value line (allowed: KEY=value, KEY="value", KEY='value', # comments)`);
    }
    const value = match[2].trim();
    const quote = value[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      if (!value.slice(1).includes(quote)) openQuote = { quote, line: index + 1 };
    } else if (/(^|\S)#/.test(value)) {
      // dotenv ends an unquoted value at '#', which would silently cut a password short.
      throw new ConfigError(`${file} line ${index + 1}: ${match[1]}'s value contains '#'; put the value in single quotes (KEY='value#with#hash')`);
    }
  });
  if (openQuote) {
    throw new ConfigError(`${file} line ${openQuote.line}: the value's opening ${openQuote.quote} is never closed`);
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
  if (values.awsRegion !== undefined && !/^[a-z0-9-]+$/.test(values.awsRegion)) {
    throw new ConfigError(`${where(SecretKeys.AWS_DEFAULT_REGION)} must be a region name such as us-east-1; got ${JSON.stringify(values.awsRegion)}`);
  }
  return { ...values, s3EndpointUrl };
}
