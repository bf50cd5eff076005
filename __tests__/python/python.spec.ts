import { spawnSync, SpawnSyncOptions } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

/**
 * The Python package: `npm run package:python` (jsii + jsii-pacmak) builds a wheel from a scratch
 * copy of the library; a Python cdk8s app using that wheel and cdk8s / cdk8s-plus-28 from PyPI
 * writes, for the default stack and two non-default ones, YAML byte-identical to the TypeScript app's.
 */
const root = path.resolve(__dirname, '..', '..');
const here = __dirname;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-python-'));
const python = process.env.PYTHON ?? 'python3';
const CONFIGURATIONS = ['default', 'custom', 'production'];
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${output}`);
  return output;
}

/** The files a wheel holds, with their text (a wheel is a zip; Python reads it, no unzip needed). */
function wheelFiles(wheel: string): Record<string, string> {
  const script = 'import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(json.dumps({n: z.read(n).decode("utf-8", "replace") for n in z.namelist() if not n.endswith(".tgz")}))';
  return JSON.parse(run(python, ['-c', script, wheel]));
}

/** The text of every Secret value in a manifest file (Secrets hold base64). */
function secretText(yaml: string): string {
  const secrets = parseAllDocuments(yaml).map((d) => d.toJS()).filter((o) => o.kind === 'Secret');
  return secrets.flatMap((o) => Object.values<string>(o.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8'))).join('\n');
}

let wheel: string;
let venvPython: string;

beforeAll(() => {
  const pkg = path.join(work, 'package');
  fs.mkdirSync(pkg);
  for (const entry of ['lib', 'imports', 'scripts', 'package.json', 'tsconfig.json', 'tsconfig.lib.json', 'README.md', 'LICENSE']) {
    fs.cpSync(path.join(root, entry), path.join(pkg, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
  const env = {
    ...process.env,
    JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION: '1',
    PIP_CONSTRAINT: path.join(here, 'build-constraints.txt'),
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
  };
  run('npm', ['run', '--silent', 'package:python'], { cwd: pkg, env });
  const outdir = path.join(pkg, 'build', 'jsii-dist', 'python');
  const wheels = fs.readdirSync(outdir).filter((f) => f.endsWith('.whl'));
  expect(wheels).toEqual([`cdk8s_mlflow-${require(path.join(root, 'package.json')).version}-py3-none-any.whl`]);
  wheel = path.join(outdir, wheels[0]);

  const venv = path.join(work, 'venv');
  run(python, ['-m', 'venv', venv]);
  venvPython = path.join(venv, 'bin', 'python');
  const pip = [venvPython, '-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '-q'];
  run(pip[0], [...pip.slice(1), '--no-deps', '-r', path.join(here, 'requirements.txt')]);
  run(pip[0], [...pip.slice(1), '--no-deps', wheel]);
  run(venvPython, ['-m', 'pip', 'check']);
}, 900_000);

test('the wheel carries the Apache-2.0 LICENSE and the README', () => {
  const files = wheelFiles(wheel);
  const distInfo = Object.keys(files).find((f) => f.endsWith('.dist-info/METADATA'))!;
  const license = Object.keys(files).find((f) => /\.dist-info\/(licenses\/)?LICENSE$/.test(f))!;
  expect(files[license]).toBe(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'));
  expect(files[license]).toMatch(/Apache License\s+Version 2\.0/);
  expect(files[distInfo]).toMatch(/^License: Apache-2\.0$/m);
  expect(files[distInfo]).toContain(fs.readFileSync(path.join(root, 'README.md'), 'utf8').split('\n')[2]);
  expect(files['cdk8s_mlflow/__init__.py']).toMatch(/class MlflowStack\(/);
});

test.each(CONFIGURATIONS)('the Python app and the TypeScript app write the same YAML: %s', (configuration) => {
  const outdirs = { py: path.join(work, configuration, 'py'), ts: path.join(work, configuration, 'ts') };
  run(venvPython, [path.join(here, 'app.py'), configuration], { cwd: work, env: { ...process.env, CDK8S_OUTDIR: outdirs.py } });
  run(process.execPath, [require.resolve('tsx/cli'), path.join(here, 'app.ts'), configuration], { cwd: work, env: { ...process.env, CDK8S_OUTDIR: outdirs.ts } });
  expect(fs.readdirSync(outdirs.py)).toEqual(['mlflow.k8s.yaml']);
  expect(fs.readdirSync(outdirs.ts)).toEqual(['mlflow.k8s.yaml']);
  const py = fs.readFileSync(path.join(outdirs.py, 'mlflow.k8s.yaml'));
  const ts = fs.readFileSync(path.join(outdirs.ts, 'mlflow.k8s.yaml'));
  expect(py.equals(ts)).toBe(true);
  // Each configuration really is what it says (the comparison would also pass on two empty files).
  const yaml = py.toString('utf8');
  expect(yaml).toMatch(/^kind: Deployment$/m);
  if (configuration === 'default') {
    // The README's app (`npm run synth` reading .env.example) writes the same bytes too.
    const dist = path.join(work, 'default', 'synth');
    run(process.execPath, [path.join(root, 'scripts', 'synth.js')], { cwd: root, env: { ...process.env, MLFLOW_ENV_FILE: '.env.example', CDK8S_OUTDIR: dist } });
    expect(fs.readFileSync(path.join(dist, 'mlflow.k8s.yaml')).equals(py)).toBe(true);
    expect(secretText(yaml)).toContain('change-me-postgres');
  }
  if (configuration === 'custom') {
    expect(yaml).toMatch(/^ {2}namespace: ml-platform$/m);
    expect(yaml).toMatch(/nodePort: 31555/);
    expect(yaml).toMatch(/storage: 200Gi/);
    expect(yaml).toMatch(/storageClassName: fast-ssd/);
  }
  if (configuration === 'production') {
    for (const kind of ['Ingress', 'CronJob', 'HorizontalPodAutoscaler', 'ServiceMonitor']) expect(yaml).toMatch(new RegExp(`^kind: ${kind}$`, 'm'));
    expect(yaml).toMatch(/- basic-auth$/m);
    expect(secretText(yaml)).toContain('@db.example.com:6432/');
    expect(secretText(yaml)).toMatch(/^default_permission = NO_PERMISSIONS$/m);
  }
}, 120_000);
