import * as fs from 'fs';
import { App, Chart } from 'cdk8s';
import { ConfigError, Credentials, MlflowStack } from './lib';

/** The credentials file (MLFLOW_ENV_FILE names another); with none, the example's values are used, and we say so. */
const ENV_FILE = process.env.MLFLOW_ENV_FILE ?? '.env';
const DEFAULT_ENV_FILE = '.env.example';

function credentialsFile(): string {
  if (fs.existsSync(ENV_FILE) || process.env.MLFLOW_ENV_FILE) return ENV_FILE;
  process.stderr.write(
    '\n' +
    '  *************************************************************************\n' +
    `  WARNING: no ${ENV_FILE} found; using ${DEFAULT_ENV_FILE} with its PUBLIC example\n` +
    '  passwords. Fine for a try-out cluster, never for real data:\n' +
    `  cp ${DEFAULT_ENV_FILE} ${ENV_FILE}, set real values, synth again.\n` +
    '  *************************************************************************\n\n',
  );
  return DEFAULT_ENV_FILE;
}

try {
  const app = new App();
  const chart = new Chart(app, 'mlflow');
  const credentials = Credentials.fromEnvFile(credentialsFile());
  new MlflowStack(chart, 'mlflow', { credentials });
  app.synth();
  if (credentials.values?.adminPassword === undefined) {
    process.stderr.write('note: MLflow basic auth is off: anyone who reaches the node port can read and change everything. Set MLFLOW_TRACKING_PASSWORD in .env to turn it on.\n');
  }
  process.stdout.write(`wrote ${app.outdir}/${chart.node.id}.k8s.yaml\n`);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
}
