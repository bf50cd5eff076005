/**
 * A throwaway Kubernetes control plane on loopback: etcd + kube-apiserver + kube-controller-manager,
 * started by the real-node suite's launcher (`e2e/node/node.sh control-plane`), the same programs with
 * the same flags as the node's control plane, on 127.0.0.1 and random free ports.
 *
 * No scheduler and no kubelet: controllers create Pods, which stay Pending. Each cluster keeps its data,
 * certificates and logs in a fresh temp dir and is stopped by `stop()` (`node.sh control-plane-stop`),
 * and its processes are killed on process exit too. node.sh appends each process id to
 * `$CLUSTER_PIDS_FILE` when set, so run.sh can end exactly those processes if the test runner dies.
 *
 * Binaries: `$K8S_BIN` (kube-apiserver, kube-controller-manager, kubectl) and `$ETCD_BIN` (etcd), both
 * set by run.sh from cluster/versions.sh (node.sh reads the same file).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const LAUNCHER = path.resolve(__dirname, '..', 'e2e', 'node', 'node.sh');

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Cluster {
  /** Path of an admin kubeconfig (system:masters client certificate). */
  readonly kubeconfig: string;
  /** The throwaway directory holding data, certificates and logs. */
  readonly dir: string;
  /** Runs the cached kubectl against this cluster. Never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): KubectlResult;
  /** Like kubectl, but throws with stdout/stderr when the exit code is not 0. */
  kubectlOk(args: string[], input?: string): KubectlResult;
  /** Stops every process this cluster started and removes its directory (kept if KEEP_CLUSTER_DIR=1). */
  stop(): Promise<void>;
}

function binDir(envName: 'K8S_BIN' | 'ETCD_BIN'): string {
  const dir = process.env[envName];
  if (!dir) throw new Error(`${envName} is not set: run the suite through cluster/run.sh`);
  return dir;
}

export function kubectlPath(): string {
  return path.join(binDir('K8S_BIN'), 'kubectl');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Distinct free ports (a port just closed could otherwise be handed out twice). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function runKubectl(kubeconfig: string, args: string[], input?: string): KubectlResult {
  const r = spawnSync(kubectlPath(), args, {
    input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, KUBECONFIG: kubeconfig, KUBECTL_INTERACTIVE_DELETE: 'false' },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a cluster; a second try covers the rare case of a just-picked free port taken by someone else. */
export async function startCluster(): Promise<Cluster> {
  try {
    return await startClusterOnce();
  } catch (e) {
    if (!/exited early/.test((e as Error).message)) throw e;
    return startClusterOnce();
  }
}

/** The processes node.sh recorded in `dir/pids` (name, pid, executable) that still run that executable. */
function recorded(dir: string): number[] {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(dir, 'pids'), 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
  return lines.map((l) => l.split(' ')).filter(([, pid, exe]) => {
    try { return fs.readlinkSync(`/proc/${pid}/exe`) === exe; } catch { return false; }
  }).map(([, pid]) => Number(pid));
}

async function startClusterOnce(): Promise<Cluster> {
  binDir('K8S_BIN');
  binDir('ETCD_BIN');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mlflow-cluster-'));
  const logDir = path.join(dir, 'logs');
  const [etcdClient, etcdPeer, apiPort] = await freePorts(3);
  const kubeconfig = path.join(dir, 'admin.kubeconfig');

  let stopped = false;
  const onExit = () => {
    for (const pid of recorded(dir)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  process.on('exit', onExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [LAUNCHER, 'control-plane-stop', dir], { stdio: 'ignore' });
    process.off('exit', onExit);
    if (process.env.KEEP_CLUSTER_DIR !== '1') fs.rmSync(dir, { recursive: true, force: true });
  };

  const started = spawnSync('bash', [LAUNCHER, 'control-plane', dir, '127.0.0.1', String(etcdClient), String(etcdPeer), String(apiPort)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000,
  });
  if (started.status !== 0) {
    const tail = (f: string) => {
      try { return fs.readFileSync(path.join(logDir, f), 'utf8').split('\n').slice(-30).join('\n'); } catch { return ''; }
    };
    const detail = ['etcd.log', 'kube-apiserver.log', 'kube-controller-manager.log'].map((f) => `--- ${f} (tail)\n${tail(f)}`).join('\n');
    await stop();
    throw new Error(`the control plane did not start (node.sh control-plane exited ${started.status ?? started.signal}): ${started.stdout}${started.stderr}\n${detail}`);
  }

  const kubectl = (args: string[], input?: string) => runKubectl(kubeconfig, args, input);
  return {
    kubeconfig,
    dir,
    kubectl,
    kubectlOk(args: string[], input?: string) {
      const r = kubectl(args, input);
      if (r.code !== 0) {
        throw new Error(`kubectl ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      }
      return r;
    },
    stop,
  };
}
