/**
 * Derives the JSON Schema of `mlflow.yaml` from the library's jsii assembly: every prop of
 * `MlflowStackProps`, its type, optionality, docs, `@default` and `@minimum`/`@maximum`, so a setting
 * is written once, as a TypeScript prop with its TSDoc.
 *
 *   npm run docgen        (jsii, jsii-docgen for API.md, then: tsx scripts/settings-schema.ts .jsii)
 *
 * writes lib/kit/settings-schema.json, which the settings file is checked against, the converter
 * walks, and the range checks read; __tests__/jsii.test.ts fails while it is out of date.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import * as api from '../lib';
import { APP_SUPPLIED, Schema, YAML_TYPES } from '../lib/config/yaml-types';

interface TypeRef { primitive?: string; fqn?: string; collection?: { kind: string; elementtype: TypeRef } }
interface Docs { summary?: string; remarks?: string; default?: string; custom?: Record<string, string> }
interface Location { locationInModule?: { line: number } }
interface Prop extends Location { name: string; optional?: boolean; type: TypeRef; docs?: Docs; static?: boolean }
interface Method extends Location { name: string; static?: boolean; parameters?: Prop[]; returns?: { type: TypeRef }; docs?: Docs }
interface JsiiType { fqn: string; kind: string; datatype?: boolean; interfaces?: string[]; properties?: Prop[]; methods?: Method[]; members?: Array<{ name: string }>; docs?: Docs }
export interface Assembly { name: string; types: Record<string, JsiiType> }

/** The jsii types the props use: the library's own, and its dependencies' (cdk8s-plus-28's Kubernetes structs). */
interface Types {
  get(fqn: string): JsiiType | undefined;
  /** Whether a type is the library's own (its enums have runtime values here, its classes factories). */
  own(fqn: string): boolean;
  /** Every struct's schema, by fqn; `inlineSingleUse` writes those used once in place. */
  readonly definitions: Record<string, Schema>;
}

export const OUTPUT = path.join(__dirname, '..', 'lib', 'kit', 'settings-schema.json');
const ROOT_TYPE = 'MlflowStackProps';

/** The schema of `mlflow.yaml`, from the assembly. */
export function settingsSchema(assembly: Assembly): Schema {
  const root = `${assembly.name}.${ROOT_TYPE}`;
  const types: Types = {
    get: (fqn) => assembly.types[fqn] ?? dependencyAssembly(fqn.split('.')[0])?.types[fqn],
    own: (fqn) => assembly.types[fqn] !== undefined,
    definitions: {},
  };
  const { schema, definitions } = inlineSingleUse(struct(types, assembly.types[root], true), types.definitions);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'cdk8s-mlflow settings (mlflow.yaml)',
    $comment: 'Generated from the library\'s props by scripts/settings-schema.ts (npm run docgen, or its alias npm run schema); do not edit.',
    ...schema,
    ...(Object.keys(definitions).length ? { definitions } : {}),
  };
}

const REF = '#/definitions/';

/**
 * A struct used in one place is written there; one used in several (`pods` in every part, with
 * Kubernetes' affinity inside) is written once under `definitions` and referred to by `$ref`, so the
 * file, and the validator compiled from it at every synth, holds it once.
 */
function inlineSingleUse(root: Schema, all: Record<string, Schema>): { schema: Schema; definitions: Record<string, Schema> } {
  const uses = new Map<string, number>();
  const count = (node: unknown, seen: Set<string>): void => {
    if (Array.isArray(node)) return node.forEach((n) => count(n, seen));
    if (node === null || typeof node !== 'object') return;
    const ref = (node as Schema).$ref as string | undefined;
    if (ref !== undefined) {
      const name = ref.slice(REF.length);
      uses.set(name, (uses.get(name) ?? 0) + 1);
      if (!seen.has(name) && (uses.get(name) ?? 0) === 1) count(all[name], new Set([...seen, name]));
    }
    Object.values(node).forEach((n) => count(n, seen));
  };
  count(root, new Set());
  const kept = (name: string) => (uses.get(name) ?? 0) > 1;
  const inline = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(inline);
    if (node === null || typeof node !== 'object') return node;
    const { $ref, ...rest } = node as Schema;
    const name = typeof $ref === 'string' ? $ref.slice(REF.length) : undefined;
    const mapped = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, inline(v)]));
    if (name === undefined) return mapped;
    // In place, the prop's own keys (its description) over the struct's.
    return kept(name) ? { $ref, ...mapped } : { ...(inline(all[name]) as Schema), ...mapped };
  };
  const names = [...uses.keys()].filter(kept).sort();
  return { schema: inline(root) as Schema, definitions: Object.fromEntries(names.map((n) => [n, inline(all[n]) as Schema])) };
}

const dependencies = new Map<string, Assembly | undefined>();

/**
 * The jsii assembly of an installed dependency (`cdk8s-plus-28`), for the types of its that props use
 * (`k8s.Toleration`); a compressed assembly is a small redirect file beside its `.jsii.gz`.
 */
function dependencyAssembly(name: string): Assembly | undefined {
  if (!dependencies.has(name)) {
    const dir = path.join(__dirname, '..', 'node_modules', name);
    const file = path.join(dir, '.jsii');
    let assembly: (Assembly & { schema?: string; filename?: string; compression?: string }) | undefined = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    if (assembly?.schema === 'jsii/file-redirect') {
      const packed = fs.readFileSync(path.join(dir, assembly.filename!));
      assembly = JSON.parse((assembly.compression === 'gzip' ? zlib.gunzipSync(packed) : packed).toString('utf8'));
    }
    dependencies.set(name, assembly);
  }
  return dependencies.get(name);
}

function describe(docs: Docs | undefined, range?: [string, string], unit = ''): string | undefined {
  const parts = [docs?.summary, docs?.remarks, range ? `From ${range[0]}${unit} to ${range[1]}${unit}.` : undefined,
    docs?.default !== undefined ? `Default: ${docs.default.replace(/^- /, '')}` : undefined];
  const text = parts.filter((p) => p).join(' ');
  return text || undefined;
}

/** In the order the source declares them (the assembly sorts them by name), so the file's docs read as the code does. */
function inSourceOrder<T extends Location>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.locationInModule?.line ?? 0) - (b.locationInModule?.line ?? 0));
}

function allProps(types: Types, type: JsiiType): Prop[] {
  const own = inSourceOrder(type.properties ?? []);
  const inherited = (type.interfaces ?? []).flatMap((fqn) => allProps(types, types.get(fqn)!));
  return [...inherited.filter((p) => !own.some((o) => o.name === p.name)), ...own];
}

function struct(types: Types, type: JsiiType, top = false): Schema {
  const props = allProps(types, type);
  const properties: Record<string, Schema> = {};
  for (const p of props) properties[p.name] = prop(types, p, types.own(type.fqn));
  return {
    type: 'object',
    additionalProperties: false,
    ...(describe(type.docs) && !top ? { description: describe(type.docs) } : {}),
    properties,
    required: props.filter((p) => !p.optional && !(p.type.fqn && APP_SUPPLIED[p.type.fqn])).map((p) => p.name),
  };
}

/** A prop's schema; `own` says whether it is the library's (a dependency's, Kubernetes', may hold an empty string). */
function prop(types: Types, p: Prop, own: boolean): Schema {
  const custom = p.docs?.custom ?? {};
  const range: [string, string] | undefined = custom.minimum !== undefined && custom.maximum !== undefined ? [custom.minimum, custom.maximum] : undefined;
  if ((custom.minimum === undefined) !== (custom.maximum === undefined)) throw new Error(`${p.name}: @minimum and @maximum go together`);
  const schema = own || p.type.primitive !== 'string' ? typeSchema(types, p.type, p.name) : { type: 'string' };
  if (range && p.type.primitive === 'number') {
    return { ...schema, minimum: Number(range[0]), maximum: Number(range[1]), description: describe(p.docs, range) };
  }
  if (range && p.type.fqn === 'cdk8s.Duration') {
    // A duration's bounds are in seconds; the pattern cannot check them, the stack does (kit/settings.ts).
    return { ...schema, 'x-minimum': Number(range[0]), 'x-maximum': Number(range[1]), description: `${describe(p.docs, range, 's')} Written as ${schema.description}.` };
  }
  if (range) throw new Error(`${p.name}: @minimum/@maximum apply to numbers and durations only`);
  // A value type's own description says how it is written; the prop's comes first.
  const description = [describe(p.docs), schema.description ? `Written as ${schema.description}.` : undefined].filter((d) => d).join(' ');
  return description ? { ...schema, description } : schema;
}

function typeSchema(types: Types, ref: TypeRef, where: string): Schema {
  if (ref.primitive === 'string') return { type: 'string', minLength: 1 };
  if (ref.primitive === 'boolean') return { type: 'boolean' };
  if (ref.primitive === 'number') return { type: 'integer' };
  if (ref.collection?.kind === 'array') return { type: 'array', items: typeSchema(types, ref.collection.elementtype, where) };
  if (ref.collection?.kind === 'map') {
    // A map's values are Kubernetes' (labels, annotations, env values), where an empty string is a value.
    const values = ref.collection.elementtype.primitive === 'string' ? { type: 'string' } : typeSchema(types, ref.collection.elementtype, where);
    return { type: 'object', additionalProperties: values };
  }
  const fqn = ref.fqn;
  if (fqn && YAML_TYPES[fqn]) return { ...YAML_TYPES[fqn].schema, 'x-type': fqn };
  if (fqn && APP_SUPPLIED[fqn]) return { ...APP_SUPPLIED[fqn], 'x-type': fqn };
  const type = fqn ? types.get(fqn) : undefined;
  if (type?.kind === 'enum' && !types.own(fqn!)) throw new Error(`${where}: the enum ${fqn} of a dependency has no runtime values here; add it to lib/config/yaml-types.ts`);
  if (type?.kind === 'enum') {
    const runtime = (api as unknown as Record<string, Record<string, string>>)[fqn!.split('.').pop()!];
    return { enum: type.members!.map((m) => runtime[m.name]) };
  }
  if (type?.kind === 'interface' && type.datatype) {
    if (!(fqn! in types.definitions)) {
      types.definitions[fqn!] = {};
      types.definitions[fqn!] = struct(types, type);
    }
    const description = types.definitions[fqn!].description;
    return { $ref: `${REF}${fqn}`, ...(description ? { description } : {}) };
  }
  if (type?.kind === 'class' && types.own(fqn!)) return factories(types, type, where);
  throw new Error(`${where}: mlflow.yaml cannot spell the type ${JSON.stringify(ref)}; add it to lib/config/yaml-types.ts`);
}

/** An abstract class made with static factories that take one options struct: one key per factory. */
function factories(types: Types, type: JsiiType, where: string): Schema {
  const made = inSourceOrder(type.methods ?? []).filter((m) => m.static && m.returns?.type.fqn === type.fqn);
  const properties: Record<string, Schema> = {};
  for (const m of made) {
    const options = m.parameters?.length === 1 ? types.get(m.parameters[0].type.fqn ?? '') : undefined;
    if (!options?.datatype) throw new Error(`${where}: ${type.fqn}.${m.name} must take one options struct to be written in mlflow.yaml`);
    properties[m.name] = { ...struct(types, options), description: describe(m.docs) };
  }
  return {
    type: 'object',
    additionalProperties: false,
    properties,
    required: [],
    minProperties: 1,
    maxProperties: 1,
    'x-factory': type.fqn.split('.').pop(),
    ...(describe(type.docs) ? { description: describe(type.docs) } : {}),
  };
}

export function schemaText(assembly: Assembly): string {
  return `${JSON.stringify(settingsSchema(assembly), null, 2)}\n`;
}

if (require.main === module) {
  const assemblyFile = process.argv[2] ?? '.jsii';
  fs.writeFileSync(OUTPUT, schemaText(JSON.parse(fs.readFileSync(assemblyFile, 'utf8'))));
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT)}\n`);
}
