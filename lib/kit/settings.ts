import { Duration } from 'cdk8s';
import { ConfigError } from './errors';
import SCHEMA from './settings-schema.json';

/** A node of the settings schema (lib/kit/settings-schema.json, derived from the props). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON Schema nodes, read by key
export type SettingSchema = { readonly [key: string]: any };

/** The JSON Schema of `mlflow.yaml`, derived from the props by scripts/settings-schema.ts. */
export const SETTINGS_SCHEMA: SettingSchema = SCHEMA;

/**
 * A schema node with its `$ref` resolved: a struct used in several places (`pods`) is written once,
 * under `definitions`; the node's own keys (its description) stay over the struct's.
 */
export function resolved(node: SettingSchema): SettingSchema;
export function resolved(node: SettingSchema | undefined): SettingSchema | undefined;
export function resolved(node: SettingSchema | undefined): SettingSchema | undefined {
  if (node?.$ref === undefined) return node;
  const { $ref, ...own } = node;
  return { ...SETTINGS_SCHEMA.definitions[($ref as string).slice('#/definitions/'.length)], ...own };
}

/** The schema of the setting at a dotted key path (`server.nodePort`, `backendStore.external.port`). */
export function settingSchema(keyPath: string): SettingSchema {
  const node = keyPath.split('.').reduce<SettingSchema | undefined>((s, key) => resolved(resolved(s)?.properties?.[key]), SETTINGS_SCHEMA);
  if (!node) throw new Error(`no setting ${keyPath} in the settings schema`);
  return node;
}

/** An integer setting within the range its prop's `@minimum`/`@maximum` give. */
export function checkInteger(keyPath: string, value: number, minimum: number = settingSchema(keyPath).minimum): number {
  const { maximum } = settingSchema(keyPath);
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new ConfigError(`${keyPath} must be an integer from ${minimum} to ${maximum}; got ${value}`, keyPath);
  }
  return value;
}

/** A duration setting, in whole seconds, within the range its prop's `@minimum`/`@maximum` give. */
export function checkSeconds(keyPath: string, value: Duration): number {
  const { 'x-minimum': minimum, 'x-maximum': maximum } = settingSchema(keyPath);
  const seconds = value.toSeconds();
  if (!Number.isInteger(seconds) || seconds < minimum || seconds > maximum) {
    throw new ConfigError(`${keyPath} must be whole seconds from ${minimum}s to ${maximum}s; got ${seconds}s`, keyPath);
  }
  return seconds;
}
