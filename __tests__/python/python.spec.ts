import { spawnSync, SpawnSyncOptions } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { scenario, scenarioNames, synth } from '../../e2e/matrix';

/**
 * The Python package: `npm run package:python` (jsii + jsii-pacmak) builds a wheel from a scratch
 * copy of the library; a Python cdk8s app using that wheel and cdk8s / cdk8s-plus-28 from PyPI
 * builds every scenario of the matrix (e2e/scenarios/) and writes YAML byte-identical to the
 * TypeScript app's (the matrix loader) and to `npm run synth`'s.
 */
const root = path.resolve(__dirname, '..', '..');
const here = __dirname;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-python-'));
const python = process.env.PYTHON ?? 'python3';
const SCENARIOS = scenarioNames();
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
  // Every scenario in one Python process (the jsii runtime starts once).
  run(venvPython, [path.join(here, 'app.py'), path.join(work, 'py'), ...SCENARIOS.map((name) => scenario(name).dir)], { cwd: work });
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

test.each(SCENARIOS)('scenario %s: the Python app, the TypeScript app and `npm run synth` write the same YAML', (name) => {
  const py = path.join(work, 'py', name);
  const error = path.join(py, 'error.txt');
  if (fs.existsSync(error)) throw new Error(`the Python app failed on ${name}:\n${fs.readFileSync(error, 'utf8')}`);
  expect(fs.readdirSync(py)).toEqual(['mlflow.k8s.yaml']);
  const ts = path.join(work, 'ts', name);
  synth(name, { outdir: ts });
  // The README's app, `MLFLOW_CONFIG_FILE=.../mlflow.yaml MLFLOW_ENV_FILE=.../credentials.env npm run synth`, in a directory with neither.
  const { settingsFile, envFile } = scenario(name);
  const app = path.join(work, 'app', name);
  const env: NodeJS.ProcessEnv = { ...process.env, CDK8S_OUTDIR: app };
  delete env.MLFLOW_CONFIG_FILE;
  delete env.MLFLOW_ENV_FILE;
  if (settingsFile) env.MLFLOW_CONFIG_FILE = settingsFile;
  if (envFile) env.MLFLOW_ENV_FILE = envFile;
  run(process.execPath, [path.join(root, 'scripts', 'synth.js')], { cwd: work, env });
  const [pyYaml, tsYaml, appYaml] = [py, ts, app].map((d) => fs.readFileSync(path.join(d, 'mlflow.k8s.yaml'), 'utf8'));
  expect(pyYaml).toMatch(/^kind: Deployment$/m);
  expect(pyYaml === tsYaml).toBe(true);
  expect(pyYaml === appYaml).toBe(true);
}, 120_000);
