import { createHmac } from 'crypto';
import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { SecretKeys } from '../credentials/secret-keys';
import { ServerPart } from './server-part';
import { checkSeconds } from '../kit/settings';

/** What every signed-in user may do with experiments and models they were given no explicit permission on. */
export enum Permission {
  /** Read everything. */
  READ = 'READ',
  /** Read and write everything. */
  EDIT = 'EDIT',
  /** Read, write and delete everything. */
  MANAGE = 'MANAGE',
  /** Nothing without an explicit permission. */
  NO_PERMISSIONS = 'NO_PERMISSIONS',
}

/** MLflow's built-in basic authentication (`mlflow server --app-name basic-auth`). */
export interface AuthOptions {
  /**
   * Turn basic auth on or off.
   * @default - on when the credentials carry an admin password (MLFLOW_TRACKING_PASSWORD), as `.env.example` does
   */
  readonly enabled?: boolean;
  /**
   * Permission of every user on resources they have no explicit permission on.
   * @default Permission.READ
   */
  readonly defaultPermission?: Permission;
  /**
   * How long each server worker trusts a checked username and password. MLflow hashes passwords
   * with scrypt, about a second of CPU per request on a small node when nothing is cached; the
   * price of a cache is that a changed or removed password keeps working on other workers for up
   * to this long. `Duration.seconds(0)` turns the cache off (MLflow's own default).
   * @default Duration.seconds(30)
   * @minimum 0
   * @maximum 86400
   */
  readonly credentialCacheTtl?: Duration;
}

/** The Secret entries basic auth needs: admin credentials, the shared Flask key, and MLflow's auth config file. */
export function authSecretEntries(values: CredentialValues, databaseUri: string, options: AuthOptions): Record<string, string> {
  const ttl = options.credentialCacheTtl ?? Duration.seconds(30);
  checkSeconds('auth.credentialCacheTtl', ttl);
  const username = values.adminUsername ?? 'admin';
  const password = values.adminPassword!;
  // Stable across synths (a new key would log every user out) and secret, because it is derived from secrets.
  const flaskKey = values.flaskSecretKey ?? createHmac('sha256', `${password}\0${values.postgresPassword}`).update('mlflow-flask-secret-key').digest('hex');
  // MLflow reads the file with configparser, whose interpolation treats '%' as special.
  const ini = (value: string) => value.replace(/%/g, '%%');
  return {
    [SecretKeys.MLFLOW_TRACKING_USERNAME]: username,
    [SecretKeys.MLFLOW_TRACKING_PASSWORD]: password,
    [SecretKeys.MLFLOW_FLASK_SERVER_SECRET_KEY]: flaskKey,
    [SecretKeys.AUTH_CONFIG_FILE]: [
      '[mlflow]',
      `default_permission = ${options.defaultPermission ?? Permission.READ}`,
      `database_uri = ${ini(databaseUri)}`,
      `admin_username = ${ini(username)}`,
      `admin_password = ${ini(password)}`,
      'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
      `auth_cache_ttl_seconds = ${ttl.toSeconds()}`,
      '',
    ].join('\n'),
  };
}

const AUTH_DIR = '/etc/mlflow-auth';

/**
 * Basic auth in the server pod: MLflow's auth app reading its configuration file from the Secret,
 * the Flask key every replica shares, and the admin credentials the migrate step signs in with.
 */
export function authPart(scope: Construct, secret: kplus.ISecret): ServerPart {
  const volume = kplus.Volume.fromSecret(scope, 'auth-config', secret, { name: 'auth-config', items: { [SecretKeys.AUTH_CONFIG_FILE]: { path: SecretKeys.AUTH_CONFIG_FILE } } });
  const mounts = [{ path: AUTH_DIR, volume, readOnly: true }];
  const configPath = { MLFLOW_AUTH_CONFIG_PATH: kplus.EnvValue.fromValue(`${AUTH_DIR}/${SecretKeys.AUTH_CONFIG_FILE}`) };
  return {
    args: ['--app-name', 'basic-auth'],
    env: { ...configPath, MLFLOW_FLASK_SERVER_SECRET_KEY: secret.envValue(SecretKeys.MLFLOW_FLASK_SERVER_SECRET_KEY) },
    migrateEnv: {
      ...configPath,
      MLFLOW_TRACKING_USERNAME: secret.envValue(SecretKeys.MLFLOW_TRACKING_USERNAME),
      MLFLOW_TRACKING_PASSWORD: secret.envValue(SecretKeys.MLFLOW_TRACKING_PASSWORD),
    },
    mounts,
    migrateMounts: mounts,
  };
}
