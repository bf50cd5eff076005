import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * scripts/synth.js keeps a bundle of main.ts, lib/ and the dependencies, and V8's code cache for it.
 * Neither may ever make a synth stale or wrong: each is made again when what it was made from changes.
 */
const root = path.resolve(__dirname, '..');
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-synth-cache-'));
afterAll(() => fs.rmSync(project, { recursive: true, force: true }));
for (const entry of ['main.ts', 'lib', 'imports', 'scripts', '.env.example', 'tsconfig.json', 'package-lock.json']) {
  fs.cpSync(path.join(root, entry), path.join(project, entry), { recursive: true });
}
fs.symlinkSync(path.join(root, 'node_modules'), path.join(project, 'node_modules'));

const build = path.join(project, 'build', 'synth');
const bundle = path.join(build, 'main.js');
const codeCache = path.join(build, 'main.js.v8cache');
const output = path.join(project, 'dist', 'mlflow.k8s.yaml');

function synth(extraEnv: NodeJS.ProcessEnv = {}): string {
  const env: NodeJS.ProcessEnv = { ...process.env, MLFLOW_ENV_FILE: '.env.example', ...extraEnv };
  delete env.CDK8S_OUTDIR;
  const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: project, env, encoding: 'utf8' });
  expect(result.stderr).not.toMatch(/Error/);
  expect(result.status).toBe(0);
  return fs.readFileSync(output, 'utf8');
}
const inode = (file: string) => fs.statSync(file).ino;

test('the first synth builds the bundle and its code cache; the next one reuses both and writes the same YAML', () => {
  const first = synth();
  expect(fs.existsSync(bundle)).toBe(true);
  expect(fs.statSync(codeCache).size).toBeGreaterThan(100_000);
  // The bundle holds the dependencies: it loads no module from node_modules.
  expect(fs.readFileSync(bundle, 'utf8')).not.toMatch(/require\("(cdk8s|cdk8s-plus-28|constructs|dotenv|yaml)"\)/);
  const [bundleInode, cacheInode] = [inode(bundle), inode(codeCache)];
  expect(synth()).toBe(first);
  expect([inode(bundle), inode(codeCache)]).toEqual([bundleInode, cacheInode]);
});

test('a synth with a settings file keeps a code cache of its own (it runs the YAML parser and the schema check)', () => {
  synth();
  const [bundleInode, cacheInode] = [inode(bundle), inode(codeCache)];
  fs.copyFileSync(path.join(root, 'mlflow.example.yaml'), path.join(project, 'settings.yaml'));
  synth({ MLFLOW_CONFIG_FILE: 'settings.yaml' });
  expect(fs.statSync(path.join(build, 'main.js.settings.v8cache')).size).toBeGreaterThan(fs.statSync(codeCache).size);
  expect([inode(bundle), inode(codeCache)]).toEqual([bundleInode, cacheInode]);
});

test('a change to the installed dependencies (package-lock.json) rebuilds the bundle and drops the code cache', () => {
  synth();
  const before = inode(bundle);
  const lock = path.join(project, 'package-lock.json');
  fs.appendFileSync(lock, '\n'); // what npm install writes differs; any byte must count
  const first = synth();
  expect(inode(bundle)).not.toBe(before);
  expect(fs.existsSync(codeCache)).toBe(true);
  expect(synth()).toBe(first);
});

test('a code cache that V8 refuses (corrupt, or from another Node) is made again, and the YAML is right', () => {
  const expected = synth();
  fs.writeFileSync(codeCache, Buffer.alloc(4096, 7));
  expect(synth()).toBe(expected);
  expect(fs.readFileSync(codeCache).equals(Buffer.alloc(4096, 7))).toBe(false);
  expect(fs.statSync(codeCache).size).toBeGreaterThan(100_000);
});

test('once the inputs are two seconds old their stat stands in for their hash, and an edit that keeps size and modification time still counts', async () => {
  const statRecord = path.join(build, 'main.js.stat');
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const first = synth(); // hashes the inputs and records their stat
  expect(fs.existsSync(statRecord)).toBe(true);
  const before = inode(bundle);
  expect(synth()).toBe(first);
  expect(inode(bundle)).toBe(before);
  const images = path.join(project, 'lib', 'kit', 'images.ts');
  const { atime, mtime } = fs.statSync(images);
  fs.writeFileSync(images, fs.readFileSync(images, 'utf8').replace('v3.18.0-full', 'v3.18.1-full'));
  fs.utimesSync(images, atime, mtime); // what `cp -p` or an archive would leave: only the change time differs
  expect(synth()).toContain('ghcr.io/mlflow/mlflow:v3.18.1-full');
  expect(inode(bundle)).not.toBe(before);
});
