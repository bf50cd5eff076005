import * as fs from 'fs';
import { App, Chart } from 'cdk8s';
import { AppConfig, ConfigError, MlflowStack } from './lib';

/**
 * The app: credentials from `.env` (MLFLOW_ENV_FILE names another; with none, the example's values,
 * and we say so) and every other setting from `mlflow.yaml` (MLFLOW_CONFIG_FILE names another; with
 * none, the library's defaults).
 */
const ENV_FILE = process.env.MLFLOW_ENV_FILE ?? '.env';
const DEFAULT_ENV_FILE = '.env.example';
const CONFIG_FILE = process.env.MLFLOW_CONFIG_FILE ?? 'mlflow.yaml';

/** Writes to stdout (1) or stderr (2) at once; setting up process.stdout or stderr would cost a synth 3-5 ms. */
const print = (fd: 1 | 2, text: string) => fs.writeSync(fd, text);

function credentialsFile(): string {
  if (fs.existsSync(ENV_FILE) || process.env.MLFLOW_ENV_FILE) return ENV_FILE;
  print(2,
    '\n' +
    '  *************************************************************************\n' +
    `  WARNING: no ${ENV_FILE} found; using ${DEFAULT_ENV_FILE} with its PUBLIC example\n` +
    '  passwords. Fine for a try-out cluster, never for real data:\n' +
    `  cp ${DEFAULT_ENV_FILE} ${ENV_FILE}, set real values, synth again.\n` +
    '  *************************************************************************\n\n',
  );
  return DEFAULT_ENV_FILE;
}

/**
 * `kubectl apply -f dist` applies every file there: manifests an earlier synth wrote (a renamed
 * chart) would come back. Only `*.k8s.yaml` files go; anything else a user keeps there stays.
 */
function removeStaleManifests(outdir: string, written: string): void {
  for (const file of fs.readdirSync(outdir)) {
    if (file.endsWith('.k8s.yaml') && file !== written) fs.rmSync(`${outdir}/${file}`);
  }
}

let config: AppConfig | undefined;
try {
  const settingsFile = fs.existsSync(CONFIG_FILE) || process.env.MLFLOW_CONFIG_FILE ? CONFIG_FILE : undefined;
  config = AppConfig.load(settingsFile);
  const app = new App();
  const chart = new Chart(app, 'mlflow');
  const stack = new MlflowStack(chart, 'mlflow', config.stackProps(config.needsCredentialsFile ? credentialsFile() : ENV_FILE));
  app.synth();
  removeStaleManifests(app.outdir, `${chart.node.id}.k8s.yaml`);
  if (!stack.authEnabled && !stack.singleSignOnEnabled) {
    print(2, 'note: MLflow basic auth is off: anyone who reaches the node port can read and change everything. Set MLFLOW_TRACKING_PASSWORD in .env to turn it on.\n');
  }
  if (!config.hasPublicHost) {
    print(2, `note: MLflow answers 403 to a public node IP or DNS name it does not know; list yours under server.publicHosts in ${CONFIG_FILE} (see mlflow.example.yaml).\n`);
  }
  print(1, `wrote ${app.outdir}/${chart.node.id}.k8s.yaml: ${stack.summary}\n`);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  print(2, `error: ${config?.locate(err.message, [...err.keys]) ?? err.message}\n`);
  process.exit(1);
}
