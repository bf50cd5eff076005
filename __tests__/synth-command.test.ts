import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

/** The README's synth command, run as a user runs it: a real process, real files. */
const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-synth-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function synth(env: Record<string, string>) {
  const outdir = fs.mkdtempSync(path.join(work, 'dist-'));
  const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'synth.js')], {
    cwd: root,
    env: { ...process.env, CDK8S_OUTDIR: outdir, ...env },
    encoding: 'utf8',
  });
  return { ...result, outdir };
}

test('with no .env it uses the documented default, .env.example, and says so loudly', () => {
  const project = fs.mkdtempSync(path.join(work, 'project-'));
  fs.copyFileSync(path.join(root, '.env.example'), path.join(project, '.env.example'));
  const env = { ...process.env };
  delete env.MLFLOW_ENV_FILE;
  delete env.CDK8S_OUTDIR;
  const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'synth.js')], { cwd: project, env, encoding: 'utf8' });
  expect(result.status).toBe(0);
  expect(result.stderr).toMatch(/WARNING: no \.env found; using \.env\.example/);
  expect(fs.existsSync(path.join(project, 'dist', 'mlflow.k8s.yaml'))).toBe(true);
});

test('a bad .env fails with one clear line and no stack trace', () => {
  const file = path.join(work, 'bad.env');
  fs.writeFileSync(file, 'POSTGRES_USER=mlflow\nAWS_ACCESS_KEY_ID=ab\n');
  const result = synth({ MLFLOW_ENV_FILE: file });
  expect(result.status).toBe(1);
  expect(result.stderr).toBe(`error: ${file}: required key POSTGRES_PASSWORD is missing (required: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ARTIFACT_ROOT)\n`);
  expect(fs.readdirSync(result.outdir)).toEqual([]);
});

test('a good .env gives YAML that parses into the stack\'s objects', () => {
  const file = path.join(work, 'good.env');
  fs.writeFileSync(file, fs.readFileSync(path.join(root, '.env.example'), 'utf8').replace("'change-me-postgres'", `'p@ss:w/rd#%?&"q'`));
  const result = synth({ MLFLOW_ENV_FILE: file });
  expect(result.stderr).toBe(
    'note: MLflow basic auth is off: anyone who reaches the node port can read and change everything. Set MLFLOW_TRACKING_PASSWORD in .env to turn it on.\n' +
    'note: MLflow answers 403 to a public node IP or DNS name it does not know; list yours under server.publicHosts in mlflow.yaml (see mlflow.example.yaml).\n',
  );
  expect(result.status).toBe(0);
  const docs = parseAllDocuments(fs.readFileSync(path.join(result.outdir, 'mlflow.k8s.yaml'), 'utf8')).map((d) => d.toJS());
  expect(docs.map((d) => d.kind).filter((k) => k !== 'NetworkPolicy')).toEqual(['Secret', 'Service', 'StatefulSet', 'Service', 'StatefulSet', 'Job', 'Deployment', 'PodDisruptionBudget', 'Service', 'CronJob']);
  expect(Buffer.from(docs.find((d) => d.kind === 'Secret').data.POSTGRES_PASSWORD, 'base64').toString()).toBe(`p@ss:w/rd#%?&"q`);
});

test('an admin password in .env turns basic auth on, without the auth-off note', () => {
  const file = path.join(work, 'auth.env');
  fs.writeFileSync(file, fs.readFileSync(path.join(root, '.env.example'), 'utf8').replace("# MLFLOW_TRACKING_PASSWORD='change-me-admin-password'", "MLFLOW_TRACKING_PASSWORD='a-long-admin-password'"));
  const result = synth({ MLFLOW_ENV_FILE: file });
  expect(result.stderr).not.toContain('basic auth is off');
  expect(result.status).toBe(0);
  const docs = parseAllDocuments(fs.readFileSync(path.join(result.outdir, 'mlflow.k8s.yaml'), 'utf8')).map((d) => d.toJS());
  expect(docs.find((d) => d.kind === 'Deployment').spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--app-name', 'basic-auth']));
});

test('dist/ holds exactly this synth: an earlier manifest goes, a user\'s other file stays', () => {
  const outdir = fs.mkdtempSync(path.join(work, 'stale-'));
  fs.writeFileSync(path.join(outdir, 'old-chart.k8s.yaml'), 'kind: ConfigMap\n');
  fs.writeFileSync(path.join(outdir, 'notes.txt'), 'mine\n');
  const result = synth({ CDK8S_OUTDIR: outdir });
  expect(result.status).toBe(0);
  expect(fs.readdirSync(outdir).sort()).toEqual(['mlflow.k8s.yaml', 'notes.txt']);
});

test('a settings file in the environment is read, and its mistakes are one line with the line number', () => {
  const settings = path.join(work, 'mlflow.yaml');
  fs.writeFileSync(settings, 'server:\n  nodePort: 31000\n  publicHosts: [203.0.113.7]\n');
  const good = synth({ MLFLOW_CONFIG_FILE: settings });
  expect(good.status).toBe(0);
  expect(good.stdout).toMatch(/NodePort 31000/);
  expect(good.stderr).not.toContain('publicHosts');
  fs.writeFileSync(settings, 'server:\n  nodeport: 31000\n');
  const bad = synth({ MLFLOW_CONFIG_FILE: settings });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toBe(`error: ${settings} line 2: unknown key server.nodeport (did you mean nodePort?); allowed in server: image, replicas, workers, nodePort, exposure, resources, artifactServing, publicHosts, allowedHosts, corsAllowedOrigins, databaseWaitTimeout, autoscaling, gateway, jobs, workspaces, telemetry, pods, extraEnv, extraEnvFromSecrets, extraVolumes\n`);
});

test('`npm run synth`, the README\'s command, writes what the synth process writes', () => {
  const direct = synth({ MLFLOW_ENV_FILE: '.env.example' });
  const outdir = fs.mkdtempSync(path.join(work, 'npm-'));
  const result = spawnSync('npm', ['run', '--silent', 'synth'], { cwd: root, env: { ...process.env, CDK8S_OUTDIR: outdir, MLFLOW_ENV_FILE: '.env.example', npm_config_update_notifier: 'false' }, encoding: 'utf8' });
  expect(result.status).toBe(0);
  expect(fs.readFileSync(path.join(outdir, 'mlflow.k8s.yaml'), 'utf8')).toBe(fs.readFileSync(path.join(direct.outdir, 'mlflow.k8s.yaml'), 'utf8'));
}, 30_000);

test('`cdk8s synth` through npm is quiet offline: the repository\'s .npmrc turns the CLI\'s upgrade check off', () => {
  const env = { ...process.env };
  delete env.CDK8S_CHECK_UPGRADE;
  const outdir = fs.mkdtempSync(path.join(work, 'cli-'));
  const result = spawnSync('npm', ['exec', '--', 'cdk8s', 'synth', '--output', outdir], { cwd: root, env: { ...env, npm_config_update_notifier: 'false' }, encoding: 'utf8' });
  expect(result.status).toBe(0);
  const stderr = result.stderr.split('\n').filter((l) => l && !l.startsWith('npm warn'));
  expect(stderr.join('\n')).not.toMatch(/cdk8s-cli is available|http error|at .*\(.*:\d+:\d+\)/);
  expect(fs.readdirSync(outdir)).toEqual(['mlflow.k8s.yaml']);
}, 60_000);
