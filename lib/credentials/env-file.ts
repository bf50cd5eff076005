import * as dotenv from 'dotenv';
import { ConfigError } from '../kit/errors';
import { didYouMean } from '../kit/suggest';
import { checkNonEmpty } from '../kit/validate';
import { CredentialValues } from './credential-values';
import { SecretKeys } from './secret-keys';

/** Maps each `.env` key to the field it fills and whether it is required. */
export const ENV_KEYS: ReadonlyArray<[string, keyof CredentialValues, boolean]> = [
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
  [SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE, 'kekPassphrase', false],
  [SecretKeys.MLFLOW_CRYPTO_KEK_VERSION, 'kekVersion', false],
  [SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, 'ssoClientSecret', false],
  [SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, 'ssoCookieSecret', false],
];

/** Parses `.env` text into credential values; errors name the key and the file. */
export function valuesFromEnvText(text: string, file: string): CredentialValues {
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
 * dotenv skips lines it cannot parse, takes the last of a key given twice and keeps keys nobody
 * reads, all without a word: a typo would silently change what is deployed. This names such lines
 * first: a line that is not KEY=value, an unknown key (with the known key it is closest to), a key
 * given twice.
 */
function checkEnvSyntax(text: string, file: string): void {
  const lines = text.split(/\r?\n/);
  const known = ENV_KEYS.map(([key]) => key);
  const seen = new Map<string, number>();
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
    const key = match[1];
    if (!known.includes(key)) {
      throw new ConfigError(`${file} line ${index + 1}: unknown key ${key}${didYouMean(key, known)}; allowed: ${known.join(', ')}`);
    }
    if (seen.has(key)) {
      throw new ConfigError(`${file} line ${index + 1}: ${key} is given twice (first on line ${seen.get(key)}); keep one`);
    }
    seen.set(key, index + 1);
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

