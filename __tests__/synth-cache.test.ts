import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * scripts/synth.js keeps a bundle of main.ts, lib/ and the dependencies in build/synth/. It may never
 * make a synth stale: it is built again whenever the content of what it was made from changes.
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
const output = path.join(project, 'dist', 'mlflow.k8s.yaml');

function synth(): string {
  const env: NodeJS.ProcessEnv = { ...process.env, MLFLOW_ENV_FILE: '.env.example' };
  delete env.CDK8S_OUTDIR;
  const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: project, env, encoding: 'utf8' });
  expect(result.stderr).not.toMatch(/Error/);
  expect(result.status).toBe(0);
  return fs.readFileSync(output, 'utf8');
}
const inode = (file: string) => fs.statSync(file).ino;

test('the first synth builds the bundle, with the Python programs beside it; the next one reuses it and writes the same YAML', () => {
  const first = synth();
  // The bundle holds the dependencies: it loads no module from node_modules.
  expect(fs.readFileSync(bundle, 'utf8')).not.toMatch(/require\("(cdk8s|cdk8s-plus-28|constructs|dotenv|yaml|ajv)"\)/);
  expect(fs.readFileSync(path.join(build, 'migrate.py'), 'utf8')).toBe(fs.readFileSync(path.join(project, 'lib', 'server', 'migrate.py'), 'utf8'));
  const before = inode(bundle);
  expect(synth()).toBe(first);
  expect(inode(bundle)).toBe(before);
});

test('a change to the installed dependencies (package-lock.json) rebuilds the bundle', () => {
  synth();
  const before = inode(bundle);
  fs.appendFileSync(path.join(project, 'package-lock.json'), '\n'); // what npm install writes differs; any byte must count
  const first = synth();
  expect(inode(bundle)).not.toBe(before);
  expect(synth()).toBe(first);
});

test('an edit to a lib/ file rebuilds the bundle, even one that keeps the file\'s size and modification time', () => {
  synth();
  const before = inode(bundle);
  const images = path.join(project, 'lib', 'kit', 'images.ts');
  const { atime, mtime } = fs.statSync(images);
  fs.writeFileSync(images, fs.readFileSync(images, 'utf8').replace('v3.18.0-full', 'v3.18.1-full'));
  fs.utimesSync(images, atime, mtime); // what `cp -p` or an archive would leave
  expect(synth()).toContain('ghcr.io/mlflow/mlflow:v3.18.1-full');
  expect(inode(bundle)).not.toBe(before);
});
