/** Helpers shared by the cluster tests: synthesizing manifests, reading them, waiting. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { Cluster, KubectlResult } from './harness';

export const repoRoot = path.resolve(__dirname, '..');

const tempDirs: string[] = [];
// Jest's module sandbox does not see the process 'exit' event: clean up after each test file instead.
afterAll(() => {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'cdk8s-mlflow-manifests-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/**
 * The default app exactly as a user makes it: `npm run synth` (scripts/synth.js -> main.ts) with
 * `.env.example` as the credentials file, run in a temp dir so the repository's dist/ is left alone.
 * Returns the `dist` directory.
 */
export function synthDefault(): string {
  const cwd = tempDir();
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'synth.js')], {
    cwd,
    env: { ...process.env, MLFLOW_ENV_FILE: path.join(repoRoot, '.env.example') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const dist = path.join(cwd, 'dist');
  if (!fs.readdirSync(dist).some((f) => f.endsWith('.k8s.yaml'))) throw new Error(`npm run synth wrote nothing to ${dist}`);
  return dist;
}

/** The named configurations of cluster/synth.ts, each in its own directory, in one tsx run. */
export function synthConfigs(...names: string[]): Record<string, string> {
  const root = tempDir();
  execFileSync(path.join(repoRoot, 'node_modules', '.bin', 'tsx'), [path.join(__dirname, 'synth.ts'), root, ...names], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Object.fromEntries(names.map((n) => [n, path.join(root, n)]));
}

export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; [k: string]: unknown };
  readonly spec?: any;
  readonly [k: string]: any;
}

/** Every object in every *.k8s.yaml / *.yaml file of a directory, in file order. */
export function readObjects(dir: string): ManifestObject[] {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  return files.flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))
    .map((d) => d.toJS())
    .filter((o) => o && typeof o === 'object'));
}

/** Writes objects as a multi-document YAML file into a new directory; returns the directory. */
export function writeObjects(objects: unknown[]): string {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'objects.yaml'), objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  return dir;
}

export function find(objects: ManifestObject[], kind: string, name?: string): ManifestObject {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the manifests`);
  return o;
}

/** The non-empty lines of kubectl's output. */
export function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/** kubectl's stderr without noise that is not about the manifests (none expected today). */
export function warnings(r: KubectlResult): string[] {
  return lines(r.stderr).filter((l) => /warning/i.test(l));
}

export function getJson(cluster: Cluster, args: string[]): any {
  return JSON.parse(cluster.kubectlOk(['get', ...args, '-o', 'json']).stdout);
}

/** Exists (exit 0) or not (NotFound); anything else is an error. */
export function tryGetJson(cluster: Cluster, args: string[]): any | undefined {
  const r = cluster.kubectl(['get', ...args, '-o', 'json']);
  if (r.code === 0) return JSON.parse(r.stdout);
  if (/NotFound|not found/.test(r.stderr)) return undefined;
  throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
}

/** Polls until `check` returns a value other than undefined/false; the last reason goes into the error. */
export async function waitUntil<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Creates a namespace the way `kubectl apply` later expects (with its last-applied annotation). */
export async function createNamespace(cluster: Cluster, name: string, labels: Record<string, string> = {}): Promise<void> {
  cluster.kubectlOk(['create', 'namespace', name, '--save-config']);
  if (Object.keys(labels).length > 0) {
    cluster.kubectlOk(['label', 'namespace', name, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)]);
  }
  // Pods are refused until the serviceaccount controller has made `default` in the namespace.
  await waitUntil(`serviceaccount default in ${name}`, () => tryGetJson(cluster, ['serviceaccount', 'default', '-n', name]));
}

/** Pods in a namespace, grouped by the kind/name of their controller. */
export function podsByOwner(cluster: Cluster, namespace: string): Map<string, any[]> {
  const pods = getJson(cluster, ['pods', '-n', namespace]).items as any[];
  const byOwner = new Map<string, any[]>();
  for (const p of pods) {
    const o = (p.metadata.ownerReferences ?? []).find((r: any) => r.controller) ?? { kind: 'none', name: '' };
    const key = `${o.kind}/${o.name}`;
    byOwner.set(key, [...(byOwner.get(key) ?? []), p]);
  }
  return byOwner;
}

/** Events with reason FailedCreate (a controller could not create a Pod or a PVC). */
export function failedCreateEvents(cluster: Cluster, namespace: string): string[] {
  const events = getJson(cluster, ['events', '-n', namespace, '--field-selector', 'reason=FailedCreate']).items as any[];
  return events.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}: ${e.message}`);
}

/** The namespace all objects of a synth output live in (the Namespace object's own name counts). */
export function namespaceOf(dir: string): string {
  const namespaces = new Set(readObjects(dir).map((o) => o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace ?? 'default'));
  if (namespaces.size !== 1) throw new Error(`${dir}: objects in several namespaces: ${[...namespaces].join(', ')}`);
  return [...namespaces][0];
}

/** How `kubectl apply` names an object in its output: `<kind>[.<group>]/<name>`, kind lower-cased. */
export function resourceName(o: ManifestObject): string {
  const group = o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : '';
  return `${o.kind.toLowerCase()}${group}/${o.metadata.name}`;
}

/** `kubectl apply` output as resource -> verb (created, configured, unchanged, serverside-applied). */
export function applyVerbs(stdout: string): Map<string, string> {
  return new Map(lines(stdout).map((l) => {
    const m = /^(\S+) (\S+)( \(server dry run\))?$/.exec(l);
    if (!m) throw new Error(`unexpected kubectl apply line: ${l}`);
    return [m[1], m[2]];
  }));
}

/**
 * The Pods the controllers must create for the workloads in a manifest set, keyed like
 * podsByOwner(): `StatefulSet/<name>`, `Job/<name>`, and `Deployment/<name>` for the Pods of the
 * Deployment's ReplicaSets. CronJobs create nothing until their schedule fires.
 */
export function expectedPods(objects: ManifestObject[]): Record<string, number> {
  const want: Record<string, number> = {};
  for (const o of objects) {
    if (o.kind === 'Deployment' || o.kind === 'StatefulSet') want[`${o.kind}/${o.metadata.name}`] = o.spec.replicas ?? 1;
    if (o.kind === 'Job') want[`Job/${o.metadata.name}`] = o.spec.parallelism ?? 1;
  }
  return want;
}

/** Pods per workload, as expectedPods() keys them (ReplicaSet Pods counted under their Deployment). */
export function actualPods(cluster: Cluster, namespace: string): Record<string, number> {
  const replicaSets = getJson(cluster, ['replicasets', '-n', namespace]).items as any[];
  const rsOwner = new Map(replicaSets.map((rs) => {
    const o = (rs.metadata.ownerReferences ?? []).find((r: any) => r.controller);
    return [rs.metadata.name, o ? `${o.kind}/${o.name}` : `ReplicaSet/${rs.metadata.name}`];
  }));
  const got: Record<string, number> = {};
  for (const [owner, pods] of podsByOwner(cluster, namespace)) {
    const key = owner.startsWith('ReplicaSet/') ? rsOwner.get(owner.slice('ReplicaSet/'.length)) ?? owner : owner;
    got[key] = (got[key] ?? 0) + pods.length;
  }
  return got;
}

/** Waits until every workload has at least its expected number of Pods; returns the counts. */
export async function waitForPods(cluster: Cluster, namespace: string, want: Record<string, number>, timeoutMs = 60_000) {
  return waitUntil(`Pods ${JSON.stringify(want)} in ${namespace}`, () => {
    const got = actualPods(cluster, namespace);
    return Object.entries(want).every(([k, n]) => (got[k] ?? 0) >= n) ? got : undefined;
  }, timeoutMs);
}

/** resourceVersion of every object of a manifest directory, keyed by resourceName(). */
export function resourceVersions(cluster: Cluster, dir: string): Record<string, string> {
  const live = getJson(cluster, ['-f', dir]);
  const items = (live.kind === 'List' ? live.items : [live]) as any[];
  return Object.fromEntries(items.map((i) => [resourceName(i), i.metadata.resourceVersion]));
}

/** The vendored CRDs (ServiceMonitor for `metrics`, HTTPRoute for `httpRoute`). */
const CRD_DIR = path.join(repoRoot, 'imports', 'crds');

export function installCrds(cluster: Cluster): void {
  for (const file of fs.readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml'))) {
    // `create`, not client-side `apply`: a CRD is larger than the last-applied annotation may be.
    cluster.kubectlOk(['create', '-f', path.join(CRD_DIR, file)]);
    const name = parseAllDocuments(fs.readFileSync(path.join(CRD_DIR, file), 'utf8'))[0].toJS().metadata.name;
    cluster.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${name}`]);
  }
}

/** The e2e suite's scenarios: directories with the app's settings (`mlflow.yaml`), `credentials.env` and maybe `secret.yaml`. */
export const SCENARIO_ROOT = path.join(repoRoot, 'e2e', 'scenarios');

export function scenarioNames(): string[] {
  return fs.readdirSync(SCENARIO_ROOT).filter((d) => fs.statSync(path.join(SCENARIO_ROOT, d)).isDirectory()).sort();
}

/**
 * A scenario synthesized as a user does (scripts/synth.js with MLFLOW_CONFIG_FILE and MLFLOW_ENV_FILE),
 * with `overrides` merged into its settings (a namespace and node port of its own, so several can
 * live in one cluster). Returns the `dist` directory.
 */
export function synthScenario(name: string, overrides: { namespace: string; nodePort: number }): string {
  const dir = path.join(SCENARIO_ROOT, name);
  const settingsFile = path.join(dir, 'mlflow.yaml');
  const settings = fs.existsSync(settingsFile) ? (parseAllDocuments(fs.readFileSync(settingsFile, 'utf8'))[0].toJS() ?? {}) : {};
  const cwd = tempDir();
  settings.namespace = overrides.namespace;
  settings.server = { ...settings.server, nodePort: overrides.nodePort };
  fs.writeFileSync(path.join(cwd, 'mlflow.yaml'), JSON.stringify(settings));
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'synth.js')], {
    cwd,
    env: { ...process.env, MLFLOW_CONFIG_FILE: path.join(cwd, 'mlflow.yaml'), MLFLOW_ENV_FILE: path.join(dir, 'credentials.env') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return path.join(cwd, 'dist');
}
