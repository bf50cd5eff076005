import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * The public API follows jsii's rules (so the library can be published for Python, Java, .NET, Go):
 * the jsii compiler, not a lint, compiles lib/ in a scratch copy and writes the assembly, from which
 * jsii-docgen writes the API reference that API.md must match.
 */
const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-jsii-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The compile both tests read: jsii's output and the assembly it wrote, made once before either. */
let compiled: { output: string; status: number | null };
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
  compiled = { output: result.stdout + result.stderr, status: result.status };
}, 180_000);

test('jsii compiles the library and its assembly has the public constructs', () => {
  expect(compiled.output).toMatch(/Errors: 0 \| Warnings: 0/);
  expect(compiled.status).toBe(0);
  const assembly = JSON.parse(fs.readFileSync(path.join(work, '.jsii'), 'utf8'));
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
