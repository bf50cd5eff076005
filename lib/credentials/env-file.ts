import * as dotenv from 'dotenv';
import { ConfigError } from '../kit/errors';
import { didYouMean } from '../kit/suggest';
import { CredentialValues } from './credential-values';
import { CREDENTIAL_KEYS } from './credential-keys';

/** Credential values parsed from `.env` text, and the line each key is on. */
export interface EnvFileValues {
  readonly values: CredentialValues;
  readonly lines: ReadonlyMap<string, number>;
}

/** Parses `.env` text into credential values; errors name the file, the line and the key. */
export function valuesFromEnvText(text: string, file: string): EnvFileValues {
  const lines = checkEnvSyntax(text, file);
  const parsed = dotenv.parse(text);
  const values: Record<string, string> = {};
  for (const { key, field, required } of CREDENTIAL_KEYS) {
    const value = parsed[key];
    if (required && value === undefined) {
      throw new ConfigError(`${file}: required key ${key} is missing (required: ${CREDENTIAL_KEYS.filter((c) => c.required).map((c) => c.key).join(', ')})`, key);
    }
    // An empty optional key counts as absent; an empty required one is reported by the checks.
    if (value !== undefined && (required || value.trim() !== '')) values[field] = value;
  }
  return { values: values as unknown as CredentialValues, lines };
}

/**
 * dotenv skips lines it cannot parse, takes the last of a key given twice and keeps keys nobody
 * reads, all without a word: a typo would silently change what is deployed. This names such lines
 * first: a line that is not KEY=value, an unknown key (with the known key it is closest to), a key
 * given twice. Returns the line of each key.
 */
function checkEnvSyntax(text: string, file: string): Map<string, number> {
  const lines = text.split(/\r?\n/);
  const known = CREDENTIAL_KEYS.map((c) => c.key);
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
      throw new ConfigError(`${file} line ${index + 1}: ${key} is given twice (first on line ${seen.get(key)}); keep one`, key);
    }
    seen.set(key, index + 1);
    const value = match[2].trim();
    const quote = value[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      if (!value.slice(1).includes(quote)) openQuote = { quote, line: index + 1 };
    } else if (/(^|\S)#/.test(value)) {
      // dotenv ends an unquoted value at '#', which would silently cut a password short.
      throw new ConfigError(`${file} line ${index + 1}: ${match[1]}'s value contains '#'; put the value in single quotes (KEY='value#with#hash')`, key);
    }
  });
  if (openQuote) {
    throw new ConfigError(`${file} line ${openQuote.line}: the value's opening ${openQuote.quote} is never closed`);
  }
  return seen;
}
