/** Helpers shared by the cluster tests: synthesizing manifests, reading them, waiting. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { Settings, settingsOf, synth } from '../e2e/matrix';
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
 * A scenario of the matrix (e2e/scenarios/<name>/) synthesized through the app's path into a new
 * directory, with `overrides` merged into its settings; returns the directory.
 */
export function distOf(name: string, overrides?: Settings): string {
  const dir = tempDir();
  synth(name, { outdir: dir, overrides });
  return dir;
}

/**
 * Settings that give a scenario a namespace and node port of its own, so that several live in one
 * cluster (a ClusterIP Service has no node port to change).
 */
export function isolated(name: string, namespace: string, nodePort: number): Settings {
  return settingsOf(name).server?.exposure === 'ClusterIP' ? { namespace } : { namespace, server: { nodePort } };
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
