import { ConfigError } from './errors';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

// `key` names the setting (`server.nodePort`) or credential key the value came from: messages begin
// with it, and the error carries it (see ConfigError).

/** A Kubernetes object name that must also be a DNS label (Services, Namespaces, name prefixes). */
export function checkDnsLabel(value: string, key: string, maxLength = 63): string {
  if (value.length > maxLength || !DNS_LABEL.test(value)) {
    throw new ConfigError(
      `${key} must be a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${maxLength} characters); got ${JSON.stringify(value)}`,
      key,
    );
  }
  return value;
}

/** A Kubernetes object name that may contain dots (Secrets, StorageClasses). */
export function checkDnsSubdomain(value: string, key: string): string {
  if (value.length > 253 || !DNS_SUBDOMAIN.test(value)) {
    throw new ConfigError(
      `${key} must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters); got ${JSON.stringify(value)}`,
      key,
    );
  }
  return value;
}

/** Splits an artifact root `s3://bucket/prefix` into its bucket and prefix, or explains what is wrong. */
export function parseS3Uri(value: string, key: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  const allowed = 'allowed: s3://<bucket>/<prefix>, the bucket 3-63 characters of a-z, 0-9, \'.\' and \'-\', starting and ending with a letter or digit';
  if (!match) {
    throw new ConfigError(`${key} must be an S3 URI; ${allowed}; got ${JSON.stringify(value)}`, key);
  }
  const bucket = match[1];
  if (!BUCKET.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new ConfigError(`${key} names an invalid bucket ${JSON.stringify(bucket)}; ${allowed}`, key);
  }
  return { bucket, prefix: (match[2] ?? '').replace(/\/+$/, '') };
}

/** An http(s) URL with a host, as boto3 and mc need for a custom S3 endpoint. */
export function checkHttpUrl(value: string, key: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new ConfigError(`${key} must be an http:// or https:// URL including the scheme, e.g. https://s3.example.com; got ${JSON.stringify(value)}`, key);
  }
  return value.replace(/\/+$/, '');
}

/** A non-empty string without leading or trailing whitespace or line breaks. */
export function checkNonEmpty(value: string | undefined, key: string): string {
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(`${key} is required and must not be empty`, key);
  }
  if (/[\r\n]/.test(value)) {
    throw new ConfigError(`${key} must be a single line`, key);
  }
  return value;
}
