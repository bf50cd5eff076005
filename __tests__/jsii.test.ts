import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FACTORIES } from '../lib/config/factories';
import { YAML_TYPES } from '../lib/config/yaml-types';
import { SETTINGS_SCHEMA, SettingSchema } from '../lib/kit/settings';
import { Assembly, OUTPUT, schemaText } from '../scripts/settings-schema';

/**
 * The public API follows jsii's rules (so the library can be published for Python, Java, .NET, Go):
 * the jsii compiler, not a lint, compiles lib/ in a scratch copy and writes the assembly, from which
 * jsii-docgen writes the API reference that API.md must match, and scripts/settings-schema.ts the
 * schema of mlflow.yaml that lib/kit/settings-schema.json must match.
 */
const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-jsii-'));
let jsiiOutput = '';
let jsiiStatus: number | null = null;
let assembly: Assembly & { types: Record<string, any> };

beforeAll(() => {
  for (const entry of ['lib', 'imports', 'package.json', 'tsconfig.json', 'tsconfig.lib.json', 'README.md']) {
    fs.cpSync(path.join(root, entry), path.join(work, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
  const result = spawnSync(process.execPath, [require.resolve('jsii/bin/jsii'), '--silence-warnings=reserved-word'], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION: '1' },
  });
  jsiiOutput = result.stdout + result.stderr;
  jsiiStatus = result.status;
  assembly = JSON.parse(fs.readFileSync(path.join(work, '.jsii'), 'utf8'));
}, 180_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('jsii compiles the library and its assembly has the public constructs', () => {
  expect(jsiiOutput).toMatch(/Errors: 0 \| Warnings: 0/);
  expect(jsiiStatus).toBe(0);
  const types = Object.keys(assembly.types).map((fqn) => fqn.split('.').pop());
  expect(types).toEqual(expect.arrayContaining(['MlflowStack', 'MlflowStackProps', 'Credentials', 'BackendStore', 'ArtifactStore', 'TrackingServerOptions', 'AuthOptions', 'Permission']));
  expect(types).not.toEqual(expect.arrayContaining(['TrackingServer']));
  // TSDoc on every public property, and an @default on every optional prop.
  const undocumented: string[] = [];
  for (const [fqn, t] of Object.entries<any>(assembly.types)) {
    for (const p of t.properties ?? []) {
      if (!p.docs?.summary) undocumented.push(`${fqn}.${p.name}: no summary`);
      if (t.kind === 'interface' && p.optional && p.docs?.default === undefined) undocumented.push(`${fqn}.${p.name}: no @default`);
    }
  }
  expect(undocumented).toEqual([]);
  for (const fqn of Object.keys(assembly.types)) {
    const t = assembly.types[fqn];
    for (const p of t.properties ?? []) if (t.kind === 'interface' && t.datatype) expect({ fqn, prop: p.name, immutable: p.immutable }).toEqual({ fqn, prop: p.name, immutable: true });
  }
});

test('API.md is the API reference jsii-docgen writes from the current code (npm run docgen)', () => {
  const out = path.join(work, 'API.md');
  const result = spawnSync(process.execPath, [require.resolve('jsii-docgen/bin/jsii-docgen'), '-o', out], { cwd: work, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(fs.readFileSync(path.join(root, 'API.md'), 'utf8')).toBe(fs.readFileSync(out, 'utf8'));
}, 60_000);

test('the settings schema is the one derived from every prop of MlflowStackProps (npm run docgen, or its alias npm run schema)', () => {
  // A prop added without `npm run docgen` fails here: the YAML file could not set it.
  expect(fs.readFileSync(OUTPUT, 'utf8')).toBe(schemaText(assembly));
});

/** Every node of the schema, with its key path. */
function nodes(schema: SettingSchema, at: string[] = []): Array<[string, SettingSchema]> {
  const children = Object.entries<SettingSchema>(schema.properties ?? {}).flatMap(([k, v]) => nodes(v, [...at, k]));
  return [[at.join('.'), schema], ...(schema.items ? nodes(schema.items, [...at, '[]']) : []), ...children];
}

test('the converter knows every library type and factory class the schema names', () => {
  const all = nodes(SETTINGS_SCHEMA);
  const types = all.map(([, n]) => n['x-type']).filter((t) => t !== undefined);
  const factories = all.map(([, n]) => n['x-factory']).filter((t) => t !== undefined);
  expect(types.filter((t) => !YAML_TYPES[t] && t !== 'cdk8s-mlflow.Credentials')).toEqual([]);
  expect(factories.sort()).toEqual(Object.keys(FACTORIES).sort());
  // Every prop of the root struct is a key of the file.
  const props = assembly.types['cdk8s-mlflow.MlflowStackProps'].properties.map((p: { name: string }) => p.name).sort();
  expect(Object.keys(SETTINGS_SCHEMA.properties).sort()).toEqual(props);
});

test('a range is written once: as @minimum/@maximum on its prop, never again as numbers in lib/', () => {
  const ranges = nodes(SETTINGS_SCHEMA).flatMap(([key, n]) => {
    const range = n.minimum !== undefined ? [n.minimum, n.maximum] : n['x-minimum'] !== undefined ? [n['x-minimum'], n['x-maximum']] : undefined;
    return range ? [{ key, range }] : [];
  });
  expect(ranges.map((r) => r.key)).toEqual(expect.arrayContaining(['server.nodePort', 'server.replicas', 'backendStore.external.port', 'server.databaseWaitTimeout']));
  const sources: string[] = [];
  const walk = (dir: string) => fs.readdirSync(dir, { withFileTypes: true }).forEach((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full);
    else if (e.name.endsWith('.ts')) sources.push(full);
  });
  walk(path.join(root, 'lib'));
  const repeated: string[] = [];
  for (const file of sources) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/^\s*(\*|\/\/|\/\*\*)/.test(line)) return;
      for (const { key, range: [min, max] } of ranges) {
        if (new RegExp(`\\b${min}\\s*(,|-|to)\\s*${max}\\b`).test(line)) repeated.push(`${path.relative(root, file)}:${i + 1} repeats the range of ${key}`);
      }
    });
  }
  expect(repeated).toEqual([]);
});
