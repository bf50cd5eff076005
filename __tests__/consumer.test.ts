import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

/**
 * Another team's view: the packed library installed into a fresh cdk8s app, compiled with tsc
 * (strict), synthesized with non-default props.
 */
const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-consumer-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const APP = `
import { App, Chart, Duration, Size } from 'cdk8s';
import { ArtifactStore, BackendStore, Credentials, MlflowStack } from 'cdk8s-mlflow';

const app = new App({ outdir: 'dist' });
const chart = new Chart(app, 'platform');
const stack = new MlflowStack(chart, 'tracking', {
  name: 'tracking',
  namespace: 'ml-team',
  createNamespace: true,
  credentials: Credentials.fromSecretName('ml-team-mlflow'),
  backendStore: BackendStore.external({ host: 'postgres.databases.svc', port: 6432 }),
  artifactStore: ArtifactStore.s3({ endpoint: 'https://objects.example.com' }),
  server: { replicas: 3, nodePort: 31234, allowedHosts: ['mlflow.example.com'], databaseWaitTimeout: Duration.minutes(2) },
  bucketJob: { waitTimeout: Duration.minutes(1) },
});
BackendStore.postgres({ storage: Size.gibibytes(5) });
console.log(JSON.stringify({ uri: stack.trackingUri, nodePort: stack.nodePort, service: stack.serviceName }));
app.synth();
`;

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
}

test('the packed library installs, compiles with tsc and synthesizes in a fresh app', () => {
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  expect(files).toContain('build/lib/index.d.ts');
  expect(files.some((f) => f.startsWith('__tests__/') || f.startsWith('lib/') || f.endsWith('.env'))).toBe(false);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  const versions = require(path.join(root, 'package.json')).devDependencies;
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'consumer-app', private: true,
    dependencies: { 'cdk8s-mlflow': `file:${path.join(work, packed.filename)}`, 'cdk8s': versions.cdk8s, 'cdk8s-plus-28': versions['cdk8s-plus-28'], 'constructs': versions.constructs },
  }));
  run('npm', ['install', '--prefer-offline', '--no-package-lock'], app);
  fs.writeFileSync(path.join(app, 'main.ts'), APP);
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', esModuleInterop: true, skipLibCheck: false, types: [] }, files: ['main.ts'] }));
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], app);

  const outputs = JSON.parse(run(process.execPath, ['main.js'], app).trim());
  expect(outputs).toEqual({ uri: 'http://tracking.ml-team.svc.cluster.local:5000', nodePort: 31234, service: 'tracking' });
  const docs = parseAllDocuments(fs.readFileSync(path.join(app, 'dist', 'platform.k8s.yaml'), 'utf8')).map((d) => d.toJS());
  const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`);
  expect(kinds).toEqual([
    'Namespace/ml-team', expect.stringMatching(/^Job\/tracking-bucket-[0-9a-f]{8}$/), 'Deployment/tracking', 'PodDisruptionBudget/tracking', 'Service/tracking',
    'NetworkPolicy/tracking-tracking-server', 'NetworkPolicy/tracking-bucket-job',
  ]);
  const deployment = docs.find((d) => d.kind === 'Deployment');
  expect(deployment.spec.replicas).toBe(3);
  expect(deployment.spec.template.spec.containers[0].env.find((e: any) => e.name === 'MLFLOW_BACKEND_STORE_URI').valueFrom.secretKeyRef.name).toBe('ml-team-mlflow');
  expect(docs.find((d) => d.kind === 'Service').spec.ports[0].nodePort).toBe(31234);
}, 240_000);
