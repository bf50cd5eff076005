import Ajv, { ErrorObject } from 'ajv';
import { CONFIG_SCHEMA } from './schema';

/** How ajv checks `CONFIG_SCHEMA`; scripts/synth.js compiles the schema ahead of time with the same options. */
export const AJV_OPTIONS = { allErrors: false, strict: true, allowUnionTypes: true, verbose: true };

/** The first way `settings` breaks `CONFIG_SCHEMA`, or undefined when it follows it. */
export function schemaViolation(settings: unknown): ErrorObject | undefined {
  const ajv = new Ajv(AJV_OPTIONS);
  return ajv.validate(CONFIG_SCHEMA, settings) ? undefined : ajv.errors![0];
}
