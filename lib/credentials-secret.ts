import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ArtifactStoreConnection } from './artifact-store';
import { Duration } from 'cdk8s';
import { AuthOptions, authSecretEntries, Permission } from './auth';
import { checkIntegerInRange } from './validate';
import { BackendStoreConnection } from './backend-store';
import { CredentialValues } from './credentials';
import { databaseUri } from './database-uri';
import { LIBRARY_VERSION, partLabels } from './labels';
import { SecretKeys } from './secret-keys';
import { StoreContext } from './store-context';

export interface CredentialsSecretProps {
  /** The stack the Secret belongs to; its name is `context.secretName`. */
  readonly context: StoreContext;
  /** The credential values. */
  readonly values: CredentialValues;
  /** Where the database is: the URI is assembled from it. */
  readonly backendStore: BackendStoreConnection;
  /** Where the artifact store is: its endpoint goes into the Secret. */
  readonly artifactStore: ArtifactStoreConnection;
  /** Basic auth's settings, when auth is on. */
  readonly auth?: AuthOptions;
}

/**
 * The one Secret every container reads its credentials and store settings from (see `SecretKeys`):
 * the `.env` values plus what the stack derives from them (the database URI, the S3 endpoint, the
 * auth configuration).
 */
export class CredentialsSecret extends Construct {
  public constructor(scope: Construct, id: string, props: CredentialsSecretProps) {
    super(scope, id);
    const { context, values } = props;
    const content: Record<string, string> = {
      [SecretKeys.POSTGRES_USER]: values.postgresUser,
      [SecretKeys.POSTGRES_PASSWORD]: values.postgresPassword,
      [SecretKeys.POSTGRES_DB]: values.postgresDb,
      [SecretKeys.AWS_ACCESS_KEY_ID]: values.awsAccessKeyId,
      [SecretKeys.AWS_SECRET_ACCESS_KEY]: values.awsSecretAccessKey,
      [SecretKeys.AWS_DEFAULT_REGION]: values.awsRegion ?? 'us-east-1',
      [SecretKeys.MLFLOW_S3_ARTIFACT_ROOT]: values.artifactRoot,
      [SecretKeys.MLFLOW_BACKEND_STORE_URI]: databaseUri(values, props.backendStore),
    };
    if (props.artifactStore.endpointUrl !== undefined) content[SecretKeys.MLFLOW_S3_ENDPOINT_URL] = props.artifactStore.endpointUrl;
    if (props.auth) {
      const ttl = props.auth.credentialCacheTtl ?? Duration.seconds(30);
      checkIntegerInRange(ttl.toSeconds(), 'auth.credentialCacheTtl (seconds)', 0, 86400);
      Object.assign(content, authSecretEntries(values, content[SecretKeys.MLFLOW_BACKEND_STORE_URI], props.auth.defaultPermission ?? Permission.READ, ttl));
    }
    // `data`, not `stringData`: the server never stores stringData, so it would show as a change on every apply.
    new k8s.KubeSecret(this, 'secret', {
      metadata: { name: context.secretName, namespace: context.namespace, labels: partLabels(context.instance, 'mlflow', 'credentials', LIBRARY_VERSION).all },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(content).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
    });
  }
}
