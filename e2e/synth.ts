// Synthesizes one stack for the e2e suite through the library's API (not main.ts), so a test can
// turn on the props the default app leaves off.
//
//   npx tsx e2e/synth.ts ENV_FILE OUTDIR [--gc-older-than-seconds N] [--direct-artifacts]
//
// ENV_FILE is read with Credentials.fromEnvFile: MLFLOW_TRACKING_PASSWORD in it turns basic auth on,
// as in the default app. Prints the path of the written file.
import * as path from 'path';
import { App, Chart, Duration } from 'cdk8s';
import { ArtifactServing, Credentials, MlflowStack, MlflowStackProps } from '../lib';

const [envFile, outdir, ...flags] = process.argv.slice(2);
if (!envFile || !outdir) {
  process.stderr.write('usage: npx tsx e2e/synth.ts ENV_FILE OUTDIR [--gc-older-than-seconds N] [--direct-artifacts]\n');
  process.exit(2);
}
const option = (name: string): string | undefined => {
  const i = flags.indexOf(name);
  return i >= 0 ? flags[i + 1] : undefined;
};

const gcSeconds = option('--gc-older-than-seconds');
const props: MlflowStackProps = {
  credentials: Credentials.fromEnvFile(envFile),
  ...(gcSeconds !== undefined ? { garbageCollection: { olderThan: Duration.seconds(Number(gcSeconds)) } } : {}),
  ...(flags.includes('--direct-artifacts') ? { server: { artifactServing: ArtifactServing.DIRECT } } : {}),
};
const app = new App({ outdir: path.resolve(outdir) });
const chart = new Chart(app, 'mlflow');
new MlflowStack(chart, 'mlflow', props);
app.synth();
process.stdout.write(`${path.resolve(outdir)}/${chart.node.id}.k8s.yaml\n`);
