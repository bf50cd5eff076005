import { checkHttpUrl, parseS3Uri } from '../kit/validate';
import { CredentialValues } from './credential-values';
import { SecretKeys } from './secret-keys';

/** One credential: its `.env` and Secret key, where it lives in `CredentialValues`, its rules and how the Secret holds it. */
export interface CredentialKey {
  /** The `.env` key, which is also the Secret key. */
  readonly key: string;
  /** The field of `CredentialValues` it fills. */
  readonly field: keyof CredentialValues;
  /** Whether every `.env` must have it. */
  readonly required?: boolean;
  /** What is wrong with a value (a phrase after the key), or undefined; may throw a ConfigError of its own. */
  readonly check?: (value: string) => string | undefined;
  /** The value as the stack uses it (e.g. without a trailing slash). */
  readonly normalize?: (value: string) => string;
  /** A key it is meaningless without. */
  readonly needs?: string;
  /**
   * How the Secret gets it: `value` as given (`stored` rewrites it; `default` when absent, if what
   * it `needs` is there), or `derived` by the part that uses it (the S3 endpoint from the artifact
   * store, the admin keys from basic auth).
   */
  readonly secret: 'value' | 'derived';
  readonly stored?: (value: string) => string;
  readonly default?: string;
}

const BYTES = [16, 24, 32];

/** Every credential the stack reads, in the order the README's `.env` table lists them. */
export const CREDENTIAL_KEYS: readonly CredentialKey[] = [
  { key: SecretKeys.POSTGRES_USER, field: 'postgresUser', required: true, secret: 'value' },
  { key: SecretKeys.POSTGRES_PASSWORD, field: 'postgresPassword', required: true, secret: 'value' },
  { key: SecretKeys.POSTGRES_DB, field: 'postgresDb', required: true, secret: 'value' },
  { key: SecretKeys.AWS_ACCESS_KEY_ID, field: 'awsAccessKeyId', required: true, secret: 'value' },
  { key: SecretKeys.AWS_SECRET_ACCESS_KEY, field: 'awsSecretAccessKey', required: true, secret: 'value' },
  {
    key: SecretKeys.MLFLOW_S3_ARTIFACT_ROOT, field: 'artifactRoot', required: true, secret: 'value',
    check: (v) => void parseS3Uri(v, SecretKeys.MLFLOW_S3_ARTIFACT_ROOT),
  },
  {
    key: SecretKeys.MLFLOW_S3_ENDPOINT_URL, field: 's3EndpointUrl', secret: 'derived',
    normalize: (v) => checkHttpUrl(v, SecretKeys.MLFLOW_S3_ENDPOINT_URL),
  },
  {
    key: SecretKeys.AWS_DEFAULT_REGION, field: 'awsRegion', secret: 'value', default: 'us-east-1',
    check: (v) => (/^[a-z0-9-]+$/.test(v) ? undefined : `must be a region name such as us-east-1; got ${JSON.stringify(v)}`),
  },
  { key: SecretKeys.MLFLOW_TRACKING_USERNAME, field: 'adminUsername', secret: 'derived', needs: SecretKeys.MLFLOW_TRACKING_PASSWORD },
  {
    key: SecretKeys.MLFLOW_TRACKING_PASSWORD, field: 'adminPassword', secret: 'derived',
    check: (v) => (v.length < 12 ? `is the MLflow admin password and must be at least 12 characters (MLflow refuses shorter ones); got ${v.length}` : undefined),
  },
  { key: SecretKeys.MLFLOW_FLASK_SERVER_SECRET_KEY, field: 'flaskSecretKey', secret: 'derived' },
  {
    key: SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE, field: 'kekPassphrase', secret: 'value',
    check: (v) => (v.length < 16 ? `must be at least 16 characters (a random one: openssl rand -base64 32); got ${v.length}` : undefined),
  },
  {
    key: SecretKeys.MLFLOW_CRYPTO_KEK_VERSION, field: 'kekVersion', secret: 'value', default: '1', needs: SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE,
    check: (v) => (/^[1-9][0-9]*$/.test(v) ? undefined : `must be a whole number from 1 (mlflow crypto rotate-kek raises it); got ${JSON.stringify(v)}`),
  },
  { key: SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, field: 'ssoClientSecret', secret: 'value' },
  {
    key: SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, field: 'ssoCookieSecret', secret: 'value',
    check: (v) => (BYTES.includes(v.length) || BYTES.includes(Buffer.from(v, 'base64').length) ? undefined : 'must be 16, 24 or 32 bytes, or their base64 (openssl rand -base64 32)'),
    // oauth2-proxy decodes only URL-safe base64: `openssl rand -base64 32` output is rewritten to it (same bytes).
    stored: (v) => v.replace(/\+/g, '-').replace(/\//g, '_'),
  },
];

/** The Secret entries the credential values give (derived ones are added by the parts that derive them). */
export function secretEntries(values: CredentialValues): Record<string, string> {
  const present = (key: string) => CREDENTIAL_KEYS.some((c) => c.key === key && values[c.field] !== undefined);
  const out: Record<string, string> = {};
  for (const c of CREDENTIAL_KEYS) {
    if (c.secret !== 'value') continue;
    const value = values[c.field];
    if (value !== undefined) out[c.key] = c.stored ? c.stored(value) : value;
    else if (c.default !== undefined && (c.needs === undefined || present(c.needs))) out[c.key] = c.default;
  }
  return out;
}
