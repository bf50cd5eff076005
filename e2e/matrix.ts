/**
 * The scenario matrix: every test configuration of every suite is a directory `e2e/scenarios/<name>/`
 * holding what a user of the app holds, and nothing else:
 *
 *   mlflow.yaml       the settings (none: the defaults), keys as in mlflow.example.yaml
 *   credentials.env   the `.env` (none when the settings name an existing Secret)
 *   secret.yaml       the Secret such a user applies beside dist/ (existing-Secret scenarios only)
 *
 * The unit conformance tests, the API-server suite (cluster/) and the Python parity test
 * (__tests__/python) list the scenarios and synthesize them here; the real-node suite (e2e/*.py) reads
 * the same directories through e2e/matrix.py.
 *
 * A scenario is synthesized through the app's own path, as main.ts runs it: AppConfig.load(mlflow.yaml)
 * .stackProps(credentials.env) -> MlflowStack 'mlflow' in Chart 'mlflow'. `overrides` are merged into
 * the settings first (the API-server suite gives each scenario a namespace and node port of its own).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart, Testing } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { AppConfig, MlflowStack } from '../lib';

export const SCENARIO_ROOT = path.join(__dirname, 'scenarios');

/** A Kubernetes object as synthesized. */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };

/** The settings of mlflow.yaml, as parsed (keys mirror MlflowStackProps). */
export type Settings = Record<string, any>;

export interface Scenario {
  readonly name: string;
  readonly dir: string;
  /** `mlflow.yaml`, when the scenario has one. */
  readonly settingsFile?: string;
  /** `credentials.env`, when the scenario has one. */
  readonly envFile?: string;
  /** `secret.yaml`, when the scenario's user creates the Secret. */
  readonly secretFile?: string;
}

/** Every scenario, by name. */
export function scenarioNames(): string[] {
  return fs.readdirSync(SCENARIO_ROOT).filter((d) => fs.statSync(path.join(SCENARIO_ROOT, d)).isDirectory()).sort();
}

export function scenario(name: string): Scenario {
  const dir = path.join(SCENARIO_ROOT, name);
  if (!fs.existsSync(dir)) throw new Error(`no scenario ${name}; known: ${scenarioNames().join(', ')}`);
  const file = (f: string) => (fs.existsSync(path.join(dir, f)) ? path.join(dir, f) : undefined);
  return { name, dir, settingsFile: file('mlflow.yaml'), envFile: file('credentials.env'), secretFile: file('secret.yaml') };
}

export function scenarios(): Scenario[] {
  return scenarioNames().map(scenario);
}

/** The scenario's settings (`{}` without mlflow.yaml). */
export function settingsOf(s: Scenario | string): Settings {
  const { settingsFile } = typeof s === 'string' ? scenario(s) : s;
  return settingsFile ? (parseAllDocuments(fs.readFileSync(settingsFile, 'utf8'))[0]?.toJS() ?? {}) : {};
}

/** `b` merged into `a`, mappings key by key (a value of `b` that is not a mapping replaces `a`'s). */
export function merge(a: Settings, b: Settings): Settings {
  const out: Settings = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' ? merge(a[k], v) : v;
  }
  return out;
}

export interface SynthOptions {
  /** Settings merged into the scenario's. */
  readonly overrides?: Settings;
  /** Where `app.synth()` writes `mlflow.k8s.yaml`; without it nothing is written. */
  readonly outdir?: string;
}

/** The scenario synthesized through the app's path; returns its objects in output order. */
export function synth(s: Scenario | string, options: SynthOptions = {}): Manifest[] {
  const sc = typeof s === 'string' ? scenario(s) : s;
  let settingsFile = sc.settingsFile;
  let scratch: string | undefined;
  if (options.overrides) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-scenario-'));
    settingsFile = path.join(scratch, 'mlflow.yaml');
    fs.writeFileSync(settingsFile, JSON.stringify(merge(settingsOf(sc), options.overrides)));
  }
  try {
    const config = AppConfig.load(settingsFile);
    if (config.needsCredentialsFile && !sc.envFile) throw new Error(`scenario ${sc.name}: no credentials.env and no credentials.existingSecret`);
    const app = options.outdir ? new App({ outdir: options.outdir }) : Testing.app();
    const chart = new Chart(app, 'mlflow');
    new MlflowStack(chart, 'mlflow', config.stackProps(sc.envFile ?? ''));
    if (options.outdir) app.synth();
    return Testing.synth(chart) as Manifest[];
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** The Secret(s) of secret.yaml, in `namespace` if given. */
export function secretsOf(s: Scenario | string, namespace?: string): Manifest[] {
  const { secretFile } = typeof s === 'string' ? scenario(s) : s;
  if (!secretFile) return [];
  return parseAllDocuments(fs.readFileSync(secretFile, 'utf8')).map((d) => d.toJS() as Manifest)
    .filter((o) => o?.kind === 'Secret')
    .map((o) => (namespace ? { ...o, metadata: { ...o.metadata, namespace } } : o));
}
