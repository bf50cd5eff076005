import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ConfigError } from '../kit/errors';
import { PartLabels } from '../kit/labels';
import { CredentialValues } from './credential-values';
import { CREDENTIAL_KEYS, secretEntries } from './credential-keys';
import { Credentials } from './credentials';

export interface CredentialsSecretProps {
  /** Where the credentials come from. */
  readonly credentials: Credentials;
  /** The Secret's name when the stack creates it. */
  readonly name: string;
  /** The stack's namespace. */
  readonly namespace: string;
  /** The Secret's labels. */
  readonly labels: PartLabels;
}

/**
 * The one Secret every container reads its credentials and store settings from (see `SecretKeys`).
 * It is referenced by name from the start (`secret`), and written once, by `write`, when the parts
 * that derive entries from the credentials (the database URI, the S3 endpoint, basic auth) are
 * known; with an existing Secret nothing is written, and the stack can only trust that it holds the
 * keys the README names.
 */
export class CredentialsSecret extends Construct {
  /** The Secret, by name: created by `write`, or existing. */
  public readonly secret: kplus.ISecret;
  /** The values, when the stack writes the Secret. */
  public readonly values?: CredentialValues;
  /** Where the credentials came from, for error messages. */
  public readonly source: string;
  private readonly props: CredentialsSecretProps;
  private written?: kplus.Secret;

  public constructor(scope: Construct, id: string, props: CredentialsSecretProps) {
    super(scope, id);
    const { credentials } = props;
    this.props = props;
    this.values = credentials.values;
    this.source = credentials.source;
    this.secret = kplus.Secret.fromSecretName(this, 'existing', credentials.existingSecretName ?? props.name);
  }

  /** Whether the credentials carry `key`; an existing Secret's contents are not seen, so never. */
  public has(key: string): boolean {
    const c = CREDENTIAL_KEYS.find((k) => k.key === key);
    return c !== undefined && this.values?.[c.field] !== undefined;
  }

  /** Fails when the stack writes the Secret and `key` is not among the credentials; `why` says what needs it. */
  public require(key: string, why: string, settingKeys: string[] = []): void {
    if (this.values && !this.has(key)) throw new ConfigError(`${why} but ${this.source} has no ${key}`, [...settingKeys, key]);
  }

  /** The Secret the stack wrote; undefined with an existing Secret (or before `write`). */
  public get created(): kplus.Secret | undefined {
    return this.written;
  }

  /** Writes the Secret: the credentials and what the parts derived from them. Nothing with an existing Secret. */
  public write(derived: Record<string, string | undefined>): void {
    if (!this.values) return;
    const { props } = this;
    const stringData: Record<string, string> = { ...secretEntries(this.values) };
    for (const [key, value] of Object.entries(derived)) if (value !== undefined) stringData[key] = value;
    this.written = new kplus.Secret(this, 'secret', {
      metadata: { name: props.name, namespace: props.namespace, labels: props.labels.all },
      type: 'Opaque',
      stringData,
    });
  }
}
