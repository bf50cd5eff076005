import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ConfigError } from '../kit/errors';
import { checkDnsLabel, checkDnsSubdomain } from '../kit/validate';
import { merged, ServerPart } from './server-part';

/** A key of a Secret you manage, as the value of an environment variable. */
export interface SecretKeyReference {
  /** The Secret's name, in the stack's namespace. */
  readonly name: string;
  /** The key in the Secret. */
  readonly key: string;
  /**
   * Start the pod even when the Secret or the key is missing (the variable is then unset).
   * @default false
   */
  readonly optional?: boolean;
}

/** A ConfigMap or a Secret you manage, mounted read-only into the server (a CA bundle, a provider config). */
export interface ServerVolume {
  /** Name of the volume in the pod: a DNS label, unique among the pod's volumes. */
  readonly name: string;
  /** Where it is mounted, an absolute path (in the `mlflow` container and its `migrate` init container). */
  readonly mountPath: string;
  /**
   * A ConfigMap in the stack's namespace. Give exactly one of `configMap` and `secret`.
   * @default - none
   */
  readonly configMap?: string;
  /**
   * A Secret in the stack's namespace. Give exactly one of `configMap` and `secret`.
   * @default - none
   */
  readonly secret?: string;
  /**
   * Only these keys, each as the file at the relative path given (`{ 'ca.crt': 'ca.crt' }`).
   * @default - every key, as a file of its name
   */
  readonly items?: { [key: string]: string };
  /**
   * Mount only this file or directory of the volume at `mountPath`, e.g. one key as a file in a
   * directory of the image. Such a mount does not see later changes of the ConfigMap or Secret.
   * @default - the whole volume
   */
  readonly subPath?: string;
}

/** What the server's `extraEnv`, `extraEnvFromSecrets` and `extraVolumes` settings hold. */
export interface ServerExtras {
  readonly extraEnv?: { [name: string]: string };
  readonly extraEnvFromSecrets?: { [name: string]: SecretKeyReference };
  readonly extraVolumes?: ServerVolume[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
/**
 * Names under which programs read secrets (`OPENAI_API_KEY`, `AZURE_CLIENT_SECRET`, `HF_TOKEN`): their
 * values belong in a Secret, not in the manifest. Names of files (`..._KEY_FILE`,
 * `GOOGLE_APPLICATION_CREDENTIALS`) are not values and pass.
 */
const SECRET_LIKE = /(^|_)(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|KEY|APIKEY|CONNECTION_STRING)$/i;
/** A URL with a password in it (`http://user:password@proxy:3128`). */
const URL_WITH_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

/** A path inside the container or a volume: no `..`, no empty segment. */
function checkRelativePath(path: string, key: string, what: string): void {
  if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '' || s === '..')) {
    throw new ConfigError(`${key}: ${what} must be a relative path without '..' or empty segments; got ${JSON.stringify(path)}`, key);
  }
}

/**
 * The server's extra environment and volumes, for the `mlflow` container and its `migrate` init
 * container: plain values (`extraEnv`, which land in the manifest), values from keys of Secrets you
 * manage (`extraEnvFromSecrets`, which never do), and ConfigMaps or Secrets mounted read-only
 * (`extraVolumes`). What the stack sets itself (the other parts' env names, volume names and mount
 * paths) cannot be set or replaced here.
 */
export function extrasPart(scope: Construct, extras: ServerExtras, parts: ServerPart[]): ServerPart {
  const stackNames = new Set([...Object.keys(merged(parts, 'env')), ...Object.keys(merged(parts, 'migrateEnv'))]);
  const checkName = (name: string, key: string) => {
    if (!ENV_NAME.test(name)) throw new ConfigError(`${key}: ${JSON.stringify(name)} is not an environment variable name (letters, digits and '_', not starting with a digit)`, key);
    if (stackNames.has(name)) throw new ConfigError(`${key}: ${name} is set by the stack itself (from its settings or the Secret); it cannot be set or replaced here`, key);
  };

  const env: Record<string, kplus.EnvValue> = {};
  for (const [name, value] of Object.entries(extras.extraEnv ?? {})) {
    const key = 'server.extraEnv';
    checkName(name, key);
    if (SECRET_LIKE.test(name)) {
      throw new ConfigError(`${key}: ${name} looks like a secret, and extraEnv values are written into the manifest; put it in a Secret and name its key in server.extraEnvFromSecrets`, key);
    }
    if (typeof value !== 'string') throw new ConfigError(`${key}: the value of ${name} must be a string; got ${JSON.stringify(value)}`, key);
    if (URL_WITH_PASSWORD.test(value)) {
      throw new ConfigError(`${key}: the value of ${name} is a URL with a password, and extraEnv values are written into the manifest; put it in a Secret and name its key in server.extraEnvFromSecrets`, key);
    }
    env[name] = kplus.EnvValue.fromValue(value);
  }

  const secrets = new Map<string, kplus.ISecret>();
  for (const [name, ref] of Object.entries(extras.extraEnvFromSecrets ?? {})) {
    const key = 'server.extraEnvFromSecrets';
    checkName(name, key);
    if (name in env) throw new ConfigError(`${key}: ${name} is also in server.extraEnv; give each variable once`, [key, 'server.extraEnv']);
    checkDnsSubdomain(ref.name, `${key}.${name}.name`);
    if (!SECRET_KEY.test(ref.key ?? '')) throw new ConfigError(`${key}.${name}.key must be a Secret key (letters, digits, '-', '_' and '.'); got ${JSON.stringify(ref.key)}`, `${key}.${name}.key`);
    if (!secrets.has(ref.name)) secrets.set(ref.name, kplus.Secret.fromSecretName(scope, `extra-secret-${ref.name}`, ref.name));
    env[name] = kplus.EnvValue.fromSecretValue({ secret: secrets.get(ref.name)!, key: ref.key }, ref.optional ? { optional: true } : {});
  }

  const mounts: kplus.VolumeMount[] = [];
  const stackMounts = [...merged(parts, 'mounts'), ...merged(parts, 'migrateMounts')];
  const volumeNames = new Set(stackMounts.map((m) => m.volume.name));
  const paths = new Set(stackMounts.map((m) => m.path));
  (extras.extraVolumes ?? []).forEach((v, i) => {
    const key = `server.extraVolumes.${i}`;
    checkDnsLabel(v.name, `${key}.name`);
    if (volumeNames.has(v.name)) throw new ConfigError(`${key}.name: the pod already has a volume ${v.name}; choose another name`, `${key}.name`);
    if ((v.configMap === undefined) === (v.secret === undefined)) throw new ConfigError(`${key}: give exactly one of configMap and secret`, key);
    const mountPath = v.mountPath ?? '';
    if (!mountPath.startsWith('/') || mountPath === '/' || mountPath.includes(':') || mountPath.split('/').slice(1).some((s) => s === '' || s === '..')) {
      throw new ConfigError(`${key}.mountPath must be an absolute path other than /, without '..', ':' or a trailing '/'; got ${JSON.stringify(v.mountPath)}`, `${key}.mountPath`);
    }
    if (paths.has(mountPath)) throw new ConfigError(`${key}.mountPath: something is already mounted at ${mountPath}`, `${key}.mountPath`);
    for (const [item, path] of Object.entries(v.items ?? {})) {
      if (!SECRET_KEY.test(item)) throw new ConfigError(`${key}.items: ${JSON.stringify(item)} is not a key (letters, digits, '-', '_' and '.')`, `${key}.items`);
      checkRelativePath(path, `${key}.items`, `the path of ${item}`);
    }
    if (v.subPath !== undefined) checkRelativePath(v.subPath, `${key}.subPath`, 'subPath');
    volumeNames.add(v.name);
    paths.add(mountPath);
    const items = v.items === undefined ? undefined : Object.fromEntries(Object.entries(v.items).map(([k, path]) => [k, { path }]));
    const volume = v.configMap !== undefined
      ? kplus.Volume.fromConfigMap(scope, `extra-volume-${v.name}`, kplus.ConfigMap.fromConfigMapName(scope, `extra-configmap-${v.name}`, checkDnsSubdomain(v.configMap, `${key}.configMap`)), { name: v.name, items })
      : kplus.Volume.fromSecret(scope, `extra-volume-${v.name}`, kplus.Secret.fromSecretName(scope, `extra-secret-volume-${v.name}`, checkDnsSubdomain(v.secret!, `${key}.secret`)), { name: v.name, items });
    mounts.push({ path: mountPath, volume, readOnly: true, subPath: v.subPath });
  });
  return { env, migrateEnv: env, mounts, migrateMounts: mounts };
}
