// One measurement: build and synthesize N stacks in one cdk8s app, in this process.
// Prints JSON: { stacks, seconds, peakRssMiB, objects }.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { Credentials, MlflowStack } from '../lib';

const stacks = Number(process.argv[2] ?? '1');
const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-bench-'));
const credentials = Credentials.fromValues({
  postgresUser: 'mlflow', postgresPassword: 'bench-password', postgresDb: 'mlflow',
  awsAccessKeyId: 'bench-user', awsSecretAccessKey: 'bench-secret', artifactRoot: 's3://mlflow/artifacts',
});
const start = process.hrtime.bigint();
const app = new App({ outdir });
const chart = new Chart(app, 'bench');
for (let i = 0; i < stacks; i++) {
  new MlflowStack(chart, `stack${i}`, { credentials, name: `mlflow${i}`, namespace: `team${i}`, server: { nodePort: 30000 + i } });
}
app.synth();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const objects = fs.readFileSync(path.join(outdir, 'bench.k8s.yaml'), 'utf8').split(/^---$/m).length;
fs.rmSync(outdir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ stacks, seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, objects }) + '\n');
