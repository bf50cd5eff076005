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
import * as api from '../lib';
import { APP_SUPPLIED, Schema, YAML_TYPES } from '../lib/config/yaml-types';

interface TypeRef { primitive?: string; fqn?: string; collection?: { kind: string; elementtype: TypeRef } }
interface Docs { summary?: string; remarks?: string; default?: string; custom?: Record<string, string> }
interface Location { locationInModule?: { line: number } }
interface Prop extends Location { name: string; optional?: boolean; type: TypeRef; docs?: Docs; static?: boolean }
interface Method extends Location { name: string; static?: boolean; parameters?: Prop[]; returns?: { type: TypeRef }; docs?: Docs }
interface JsiiType { fqn: string; kind: string; datatype?: boolean; interfaces?: string[]; properties?: Prop[]; methods?: Method[]; members?: Array<{ name: string }>; docs?: Docs }
export interface Assembly { name: string; types: Record<string, JsiiType> }

export const OUTPUT = path.join(__dirname, '..', 'lib', 'kit', 'settings-schema.json');
const ROOT_TYPE = 'MlflowStackProps';

/** The schema of `mlflow.yaml`, from the assembly. */
export function settingsSchema(assembly: Assembly): Schema {
  const root = `${assembly.name}.${ROOT_TYPE}`;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'cdk8s-mlflow settings (mlflow.yaml)',
    $comment: 'Generated from the library\'s props by scripts/settings-schema.ts (npm run docgen, or its alias npm run schema); do not edit.',
    ...struct(assembly, assembly.types[root], true),
  };
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

function allProps(assembly: Assembly, type: JsiiType): Prop[] {
  const own = inSourceOrder(type.properties ?? []);
  const inherited = (type.interfaces ?? []).flatMap((fqn) => allProps(assembly, assembly.types[fqn]));
  return [...inherited.filter((p) => !own.some((o) => o.name === p.name)), ...own];
}

function struct(assembly: Assembly, type: JsiiType, top = false): Schema {
  const props = allProps(assembly, type);
  const properties: Record<string, Schema> = {};
  for (const p of props) properties[p.name] = prop(assembly, p);
  return {
    type: 'object',
    additionalProperties: false,
    ...(describe(type.docs) && !top ? { description: describe(type.docs) } : {}),
    properties,
    required: props.filter((p) => !p.optional && !(p.type.fqn && APP_SUPPLIED[p.type.fqn])).map((p) => p.name),
  };
}

function prop(assembly: Assembly, p: Prop): Schema {
  const custom = p.docs?.custom ?? {};
  const range: [string, string] | undefined = custom.minimum !== undefined && custom.maximum !== undefined ? [custom.minimum, custom.maximum] : undefined;
  if ((custom.minimum === undefined) !== (custom.maximum === undefined)) throw new Error(`${p.name}: @minimum and @maximum go together`);
  const schema = typeSchema(assembly, p.type, p.name);
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

function typeSchema(assembly: Assembly, ref: TypeRef, where: string): Schema {
  if (ref.primitive === 'string') return { type: 'string', minLength: 1 };
  if (ref.primitive === 'boolean') return { type: 'boolean' };
  if (ref.primitive === 'number') return { type: 'integer' };
  if (ref.collection?.kind === 'array') return { type: 'array', items: typeSchema(assembly, ref.collection.elementtype, where) };
  const fqn = ref.fqn;
  if (fqn && YAML_TYPES[fqn]) return { ...YAML_TYPES[fqn].schema, 'x-type': fqn };
  if (fqn && APP_SUPPLIED[fqn]) return { ...APP_SUPPLIED[fqn], 'x-type': fqn };
  const type = fqn ? assembly.types[fqn] : undefined;
  if (type?.kind === 'enum') {
    const runtime = (api as unknown as Record<string, Record<string, string>>)[fqn!.split('.').pop()!];
    return { enum: type.members!.map((m) => runtime[m.name]) };
  }
  if (type?.kind === 'interface' && type.datatype) return struct(assembly, type);
  if (type?.kind === 'class') return factories(assembly, type, where);
  throw new Error(`${where}: mlflow.yaml cannot spell the type ${JSON.stringify(ref)}; add it to lib/config/yaml-types.ts`);
}

/** An abstract class made with static factories that take one options struct: one key per factory. */
function factories(assembly: Assembly, type: JsiiType, where: string): Schema {
  const made = inSourceOrder(type.methods ?? []).filter((m) => m.static && m.returns?.type.fqn === type.fqn);
  const properties: Record<string, Schema> = {};
  for (const m of made) {
    const options = m.parameters?.length === 1 ? assembly.types[m.parameters[0].type.fqn ?? ''] : undefined;
    if (!options?.datatype) throw new Error(`${where}: ${type.fqn}.${m.name} must take one options struct to be written in mlflow.yaml`);
    properties[m.name] = { ...struct(assembly, options), description: describe(m.docs) };
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
