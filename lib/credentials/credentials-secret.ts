import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { PartLabels } from '../kit/labels';
import { Credentials } from './credentials';
import { SecretKeys } from './secret-keys';

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
 * The one Secret every container reads its credentials and store settings from (see `SecretKeys`):
 * the credential values, to which the stack adds what it derives from them (the database URI, the
 * S3 endpoint, the auth configuration); or the existing Secret the credentials name.
 */
export class CredentialsSecret extends Construct {
  /** The Secret, created or existing. */
  public readonly secret: kplus.ISecret;
  private readonly created?: kplus.Secret;

  public constructor(scope: Construct, id: string, props: CredentialsSecretProps) {
    super(scope, id);
    const { credentials } = props;
    const values = credentials.values;
    if (!values) {
      this.secret = kplus.Secret.fromSecretName(this, 'existing', credentials.existingSecretName!);
      return;
    }
    this.created = new kplus.Secret(this, 'secret', {
      metadata: { name: props.name, namespace: props.namespace, labels: props.labels.all },
      type: 'Opaque',
      stringData: {
        [SecretKeys.POSTGRES_USER]: values.postgresUser,
        [SecretKeys.POSTGRES_PASSWORD]: values.postgresPassword,
        [SecretKeys.POSTGRES_DB]: values.postgresDb,
        [SecretKeys.AWS_ACCESS_KEY_ID]: values.awsAccessKeyId,
        [SecretKeys.AWS_SECRET_ACCESS_KEY]: values.awsSecretAccessKey,
        [SecretKeys.AWS_DEFAULT_REGION]: values.awsRegion ?? 'us-east-1',
        [SecretKeys.MLFLOW_S3_ARTIFACT_ROOT]: values.artifactRoot,
      },
    });
    if (values.ssoClientSecret !== undefined) this.created.addStringData(SecretKeys.OAUTH2_PROXY_CLIENT_SECRET, values.ssoClientSecret);
    // oauth2-proxy decodes only URL-safe base64: `openssl rand -base64 32` output is rewritten to it (same bytes).
    if (values.ssoCookieSecret !== undefined) this.created.addStringData(SecretKeys.OAUTH2_PROXY_COOKIE_SECRET, values.ssoCookieSecret.replace(/\+/g, '-').replace(/\//g, '_'));
    if (values.kekPassphrase !== undefined) {
      this.created.addStringData(SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE, values.kekPassphrase);
      this.created.addStringData(SecretKeys.MLFLOW_CRYPTO_KEK_VERSION, values.kekVersion ?? '1');
    }
    this.secret = this.created;
  }

  /** Adds what the stack derives from the credentials; nothing when the Secret already exists. */
  public addDerived(entries: Record<string, string | undefined>): void {
    for (const [key, value] of Object.entries(entries)) {
      if (value !== undefined) this.created?.addStringData(key, value);
    }
  }
}
