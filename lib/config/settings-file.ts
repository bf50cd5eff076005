import * as fs from 'fs';
import type { ErrorObject } from 'ajv';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../kit/errors';
import { didYouMean } from '../kit/suggest';
import { CONFIG_SCHEMA } from './schema';
import { schemaViolation } from './schema-check';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- validated against CONFIG_SCHEMA
export type Settings = Record<string, any>;

/**
 * A YAML settings file, parsed and checked against `CONFIG_SCHEMA`. Every error names the file, the
 * line and what is allowed; an unknown key comes with the known key closest to it, and a key given
 * twice is an error (YAML parsers usually keep the last one).
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
    const violation = schemaViolation(this.settings);
    if (violation) throw this.schemaError(violation);
  }

  /** `<file> line <n>` of a dotted key path such as `server.nodePort`, or just the file. */
  public where(keyPath: string): string {
    const node = this.document.getIn(keyPath.split('.'), true) as { range?: [number, number, number] } | undefined;
    return node?.range ? `${this.path} line ${this.lines.linePos(node.range[0]).line}` : this.path;
  }

  private schemaError(error: ErrorObject): ConfigError {
    const path = error.instancePath.split('/').slice(1);
    const dotted = path.join('.') || '(top level)';
    const schemaAt = path.reduce<{ properties?: Record<string, unknown> }>((s, key) => (s.properties?.[key] ?? s) as never, CONFIG_SCHEMA as never);
    const known = Object.keys(schemaAt.properties ?? {});
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String(error.params.additionalProperty);
        const keyPath = [...path, key].join('.');
        return new ConfigError(`${this.whereKey(path, key)}: unknown key ${keyPath}${didYouMean(key, known)}; allowed in ${dotted}: ${known.join(', ')}`);
      }
      case 'required':
        return new ConfigError(`${this.where(path.join('.'))}: ${dotted} needs ${error.params.missingProperty}`);
      case 'minProperties':
      case 'maxProperties':
        return new ConfigError(`${this.where(path.join('.'))}: ${dotted} takes exactly one of ${known.join(', ')}`);
      case 'minimum':
      case 'maximum': {
        const range = error.parentSchema as { minimum: number; maximum: number };
        return new ConfigError(`${this.where(dotted)}: ${dotted} must be an integer from ${range.minimum} to ${range.maximum}; got ${JSON.stringify(valueAt(this.settings, path))}`);
      }
      case 'enum':
        return new ConfigError(`${this.where(dotted)}: ${dotted} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`);
      case 'pattern': {
        const description = (error.parentSchema as { description?: string } | undefined)?.description ?? `text matching ${error.params.pattern}`;
        return new ConfigError(`${this.where(dotted)}: ${dotted} must be ${description}; got ${JSON.stringify(valueAt(this.settings, path))}`);
      }
      default:
        return new ConfigError(`${this.where(dotted)}: ${dotted} ${error.message}; got ${JSON.stringify(valueAt(this.settings, path))}`);
    }
  }

  /** The line of a key inside the mapping at `path`. */
  private whereKey(path: string[], key: string): string {
    const parent = path.length ? this.document.getIn(path, true) : this.document.contents;
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (p.key as { value?: unknown })?.value === key);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return `${this.path} line ${this.lines.linePos(range[0]).line}`;
    }
    return isSeq(parent) ? this.where(path.join('.')) : this.path;
  }
}

function valueAt(settings: Settings, path: string[]): unknown {
  return path.reduce<unknown>((v, key) => (v as Settings | undefined)?.[key], settings);
}
