import { ConfigError } from './errors';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A Kubernetes object name that must also be a DNS label (Services, Namespaces, name prefixes). */
export function checkDnsLabel(value: string, what: string, maxLength = 63): string {
  if (value.length > maxLength || !DNS_LABEL.test(value)) {
    throw new ConfigError(
      `${what} must be a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${maxLength} characters); got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A Kubernetes object name that may contain dots (Secrets, StorageClasses). */
export function checkDnsSubdomain(value: string, what: string): string {
  if (value.length > 253 || !DNS_SUBDOMAIN.test(value)) {
    throw new ConfigError(
      `${what} must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters); got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** An integer within [min, max]. */
export function checkIntegerInRange(value: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${what} must be an integer from ${min} to ${max}; got ${value}`);
  }
  return value;
}

/** Splits an artifact root `s3://bucket/prefix` into its bucket and prefix, or explains what is wrong. */
export function parseS3Uri(value: string, what: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  const allowed = 'allowed: s3://<bucket>/<prefix>, the bucket 3-63 characters of a-z, 0-9, \'.\' and \'-\', starting and ending with a letter or digit';
  if (!match) {
    throw new ConfigError(`${what} must be an S3 URI; ${allowed}; got ${JSON.stringify(value)}`);
  }
  const bucket = match[1];
  if (!BUCKET.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new ConfigError(`${what} names an invalid bucket ${JSON.stringify(bucket)}; ${allowed}`);
  }
  return { bucket, prefix: (match[2] ?? '').replace(/\/+$/, '') };
}

/** An http(s) URL with a host, as boto3 and mc need for a custom S3 endpoint. */
export function checkHttpUrl(value: string, what: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new ConfigError(`${what} must be an http:// or https:// URL including the scheme, e.g. https://s3.example.com; got ${JSON.stringify(value)}`);
  }
  return value.replace(/\/+$/, '');
}

/** A non-empty string without leading or trailing whitespace or line breaks. */
export function checkNonEmpty(value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(`${what} is required and must not be empty`);
  }
  if (/[\r\n]/.test(value)) {
    throw new ConfigError(`${what} must be a single line`);
  }
  return value;
}
