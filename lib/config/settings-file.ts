import * as fs from 'fs';
import Ajv, { ErrorObject } from 'ajv';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../kit/errors';
import { resolved, SETTINGS_SCHEMA, SettingSchema } from '../kit/settings';
import { didYouMean } from '../kit/suggest';
import { YAML_TYPES } from './yaml-types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- validated against SETTINGS_SCHEMA
export type Settings = Record<string, any>;

/** The schema's own annotations (which library type a node is made into); ajv only checks the rest. */
const ANNOTATIONS = ['x-type', 'x-factory', 'x-minimum', 'x-maximum'];

function checkSchema(settings: unknown): ErrorObject | undefined {
  // The schema is generated and tested (__tests__/jsii.test.ts): checking it against the meta-schema at every synth would cost ~30 ms.
  const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true, validateSchema: false });
  for (const keyword of ANNOTATIONS) ajv.addKeyword(keyword);
  return ajv.validate(used(SETTINGS_SCHEMA, settings), settings) ? undefined : ajv.errors![0];
}

/**
 * The part of the schema that `value` uses: a struct keeps only the keys it has (the others cannot
 * fail, and an unknown key still does: the struct allows no others). Compiling the validator is most
 * of the check's time, and a file sets a few of the many settings.
 */
function used(node: SettingSchema, value: unknown): SettingSchema {
  const schema = resolved(node);
  if (schema.properties === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return node;
  // In the schema's order, so the first error is the one the whole schema would report; a required key stays, missing or not.
  const keep = (key: string) => key in value || (schema.required as string[] | undefined)?.includes(key);
  const properties = Object.fromEntries(Object.keys(schema.properties).filter(keep).map((key) => [key, used(schema.properties[key], (value as Settings)[key])]));
  return { ...schema, properties };
}

/** Every key path the schema knows, for a key written at the wrong level (each shared struct once per place it is used). */
function allKeyPaths(schema: SettingSchema, prefix: string[] = [], refs: string[] = []): string[][] {
  return Object.entries<SettingSchema>(resolved(schema).properties ?? {}).flatMap(([key, child]) => {
    const ref = child.$ref as string | undefined;
    if (ref !== undefined && refs.includes(ref)) return [[...prefix, key]];
    return [[...prefix, key], ...allKeyPaths(child, [...prefix, key], ref === undefined ? refs : [...refs, ref])];
  });
}

/**
 * A YAML settings file, parsed and checked against the settings schema. Every error names the file,
 * the line and what is allowed; an unknown key comes with the known key closest to it, or with
 * where it belongs when it is a key of another level, and a key given twice is an error (YAML
 * parsers usually keep the last one).
 */
export class SettingsFile {
  public readonly settings: Settings;
  private readonly lines = new LineCounter();
  private readonly document;

  public constructor(public readonly path: string) {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the settings file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    this.document = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false });
    const problem = this.document.errors[0];
    if (problem) {
      const what = problem.code === 'DUPLICATE_KEY'
        ? `${/^\s*-?\s*([^:#]+)/.exec(text.slice(problem.pos[0]).split('\n')[0])?.[1].trim()} is given twice in the same mapping; keep one`
        : problem.message.split('\n')[0];
      throw new ConfigError(`${path} line ${this.lines.linePos(problem.pos[0]).line}: ${what}`);
    }
    this.settings = (this.document.toJS() ?? {}) as Settings;
    if (typeof this.settings !== 'object' || Array.isArray(this.settings)) {
      throw new ConfigError(`${path}: the settings must be a mapping of keys (see mlflow.example.yaml)`);
    }
    const violation = checkSchema(this.settings);
    if (violation) throw this.schemaError(violation);
  }

  /**
   * `<file> line <n>` of the first key path the file holds (or, failing that, of its nearest
   * ancestor), or just the file.
   */
  public where(keyPaths: readonly string[]): string {
    for (const keyPath of keyPaths) {
      for (let path = keyPath.split('.'); path.length > 0; path = path.slice(0, -1)) {
        const line = this.lineOfKey(path.slice(0, -1), path[path.length - 1]);
        if (line !== undefined) return `${this.path} line ${line}`;
      }
    }
    return this.path;
  }

  private schemaError(error: ErrorObject): ConfigError {
    const path = error.instancePath.split('/').slice(1);
    const dotted = path.join('.') || '(top level)';
    const schemaAt = resolved(path.reduce<SettingSchema>((node, key) => {
      const s = resolved(node);
      return s.properties?.[key] ?? s.items ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : s);
    }, SETTINGS_SCHEMA));
    const known = Object.keys(schemaAt.properties ?? {});
    const got = () => JSON.stringify(path.reduce<unknown>((v, key) => (v as Settings | undefined)?.[key], this.settings));
    const at = (message: string, keyPath = path) => new ConfigError(`${this.where([keyPath.join('.')])}: ${message}`, keyPath.join('.'));
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String(error.params.additionalProperty);
        const keyPath = [...path, key];
        const elsewhere = allKeyPaths(SETTINGS_SCHEMA).filter((p) => p[p.length - 1] === key).map((p) => p.join('.'));
        const hint = elsewhere.length ? `; it belongs in ${elsewhere.join(' or ')}` : didYouMean(key, known);
        return at(`unknown key ${keyPath.join('.')}${hint}; allowed in ${dotted}: ${known.join(', ')}`, keyPath);
      }
      case 'required':
        return at(`${dotted} needs ${error.params.missingProperty}`);
      case 'minProperties':
      case 'maxProperties':
        return at(`${dotted} takes exactly one of ${known.join(', ')}`);
      case 'minimum':
      case 'maximum': {
        const range = error.parentSchema as { minimum: number; maximum: number };
        return at(`${dotted} must be an integer from ${range.minimum} to ${range.maximum}; got ${got()}`);
      }
      case 'enum':
        return at(`${dotted} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`);
      case 'pattern': {
        const parent = error.parentSchema as SettingSchema;
        const format = YAML_TYPES[parent['x-type']]?.schema.description ?? parent.description ?? `text matching ${error.params.pattern}`;
        return at(`${dotted} must be ${format}; got ${got()}`);
      }
      default:
        return at(`${dotted} ${error.message}; got ${got()}`);
    }
  }

  /** The line of `key` inside the mapping at `path`, when the file holds it. */
  private lineOfKey(path: string[], key: string): number | undefined {
    const parent = path.length ? this.document.getIn(path, true) : this.document.contents;
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (p.key as { value?: unknown })?.value === key);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    if (isSeq(parent)) {
      const item = parent.items[Number(key)] as { range?: [number, number, number] } | undefined;
      if (item?.range) return this.lines.linePos(item.range[0]).line;
    }
    return undefined;
  }
}
