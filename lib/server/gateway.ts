import * as kplus from 'cdk8s-plus-28';
import { SecretKeys } from '../credentials/secret-keys';
import { ConfigError } from '../kit/errors';
import { isEnabled } from '../kit/feature';
import { ServerPart } from './server-part';

/** MLflow's AI gateway. */
export interface GatewayOptions {
  /**
   * On or off. On needs MLFLOW_CRYPTO_KEK_PASSPHRASE in the credentials (or the existing Secret).
   * @default - on when the credentials carry MLFLOW_CRYPTO_KEK_PASSPHRASE
   */
  readonly enabled?: boolean;
}

/**
 * Whether the gateway runs: on by default when the credentials carry a key-encryption passphrase.
 * @param hasKekPassphrase whether they do; undefined with an existing Secret (then on only when asked, trusting the Secret)
 */
export function gatewayEnabled(options: GatewayOptions | undefined, hasKekPassphrase: boolean | undefined): boolean {
  const gateway = isEnabled(options, hasKekPassphrase ?? false);
  if (gateway && hasKekPassphrase === false) {
    throw new ConfigError('server.gateway is on but the credentials have no MLFLOW_CRYPTO_KEK_PASSPHRASE: the AI gateway would encrypt provider keys with MLflow\'s public development passphrase; add one to .env (e.g. openssl rand -base64 32) and keep it', ['server.gateway.enabled', 'server.gateway']);
  }
  return gateway;
}

/** The gateway's stored provider keys are encrypted with the Secret's passphrase, never MLflow's shared development one. */
export function gatewayPart(enabled: boolean, secret: kplus.ISecret): ServerPart {
  return {
    env: enabled
      ? {
        MLFLOW_CRYPTO_KEK_PASSPHRASE: secret.envValue(SecretKeys.MLFLOW_CRYPTO_KEK_PASSPHRASE),
        MLFLOW_CRYPTO_KEK_VERSION: secret.envValue(SecretKeys.MLFLOW_CRYPTO_KEK_VERSION, { optional: true }),
      }
      : { MLFLOW_ENABLE_AI_GATEWAY: kplus.EnvValue.fromValue('false') },
  };
}
