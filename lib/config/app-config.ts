import { Credentials } from '../credentials/credentials';
import type { MlflowStackProps } from '../stack-props';
import { resolved, SETTINGS_SCHEMA, SettingSchema } from '../kit/settings';
import { FACTORIES } from './factories';
import { Settings, SettingsFile } from './settings-file';
import { YAML_TYPES } from './yaml-types';

/**
 * The app's configuration, without code: credentials from a `.env` file (or an existing Secret the
 * settings name) and every other setting from a YAML file whose keys are the props of
 * `MlflowStackProps` (the settings schema is derived from them).
 */
export class AppConfig {
  /**
   * Reads and checks the settings file (YAML, see `mlflow.example.yaml`); errors name the file, the
   * line and what is allowed.
   * @param settingsFile the file; none means the library's defaults
   */
  public static load(settingsFile?: string): AppConfig {
    return new AppConfig(settingsFile === undefined ? undefined : new SettingsFile(settingsFile));
  }

  /** Whether the credentials come from a `.env` file (not from an existing Secret the settings name). */
  public readonly needsCredentialsFile: boolean;
  /** Whether any public host name or address is configured (settings or Ingress). */
  public readonly hasPublicHost: boolean;

  private constructor(private readonly file?: SettingsFile) {
    const s: Settings = file?.settings ?? {};
    this.needsCredentialsFile = s.credentials?.existingSecret === undefined;
    this.hasPublicHost = (s.server?.publicHosts?.length ?? 0) > 0 || (s.server?.allowedHosts?.length ?? 0) > 0 || s.ingress?.host !== undefined || (s.httpRoute?.hostnames?.length ?? 0) > 0;
  }

  /**
   * The stack's props: the settings, with credentials from `envFile` (read only when `needsCredentialsFile`).
   * @param envFile the credentials file (`.env`)
   */
  public stackProps(envFile: string): MlflowStackProps {
    const s: Settings = this.file?.settings ?? {};
    return {
      ...(fromYaml(SETTINGS_SCHEMA, s) as object),
      credentials: this.needsCredentialsFile ? Credentials.fromEnvFile(envFile) : Credentials.fromSecretName(s.credentials.existingSecret),
    };
  }

  /**
   * An error message of the library with the settings file and line in front: the line of the
   * first of `keys` (a `ConfigError`'s) that the file holds, or of its nearest ancestor there.
   * @param message a `ConfigError`'s message
   * @param keys the `ConfigError`'s key paths (`server.nodePort`)
   */
  public locate(message: string, keys: string[] = []): string {
    if (!this.file || message.startsWith(this.file.path)) return message;
    return keys.length ? `${this.file.where(keys)}: ${message}` : message;
  }
}

/** A value the settings schema accepted, as the props hold it: library types made, factories called. */
function fromYaml(node: SettingSchema, value: unknown): unknown {
  const schema = resolved(node);
  const type = schema['x-type'];
  if (type !== undefined) return YAML_TYPES[type] ? YAML_TYPES[type].fromYaml(value) : value;
  const factory = schema['x-factory'];
  if (factory !== undefined) {
    const [name, options] = Object.entries(value as Settings)[0];
    const make = (FACTORIES[factory] as Record<string, (options: unknown) => unknown>)[name];
    return make(fromYaml(schema.properties[name], options));
  }
  if (schema.type === 'array') return (value as unknown[]).map((item) => fromYaml(schema.items, item));
  if (schema.type === 'object') {
    // A struct's keys each have their schema; a map's (labels, env) share one.
    return Object.fromEntries(Object.entries(value as Settings).map(([key, v]) => [key, fromYaml(schema.properties?.[key] ?? schema.additionalProperties, v)]));
  }
  return value;
}
