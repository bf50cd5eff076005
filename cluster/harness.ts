/**
 * A throwaway Kubernetes control plane on loopback: etcd + kube-apiserver + kube-controller-manager.
 *
 * No scheduler and no kubelet: controllers create Pods, which stay Pending. Every process listens on
 * 127.0.0.1 on a random free port, keeps its data in a fresh temp dir, and is stopped by `stop()`
 * (also on process exit). Each started process id is appended to `$CLUSTER_PIDS_FILE` when set, so
 * run.sh can end exactly those processes if the test runner itself dies.
 *
 * Binaries: `$K8S_BIN` (kube-apiserver, kube-controller-manager, kubectl) and `$ETCD_BIN` (etcd),
 * both set by run.sh from cluster/versions.sh.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

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

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a serving certificate for 127.0.0.1, an admin client certificate, a service-account key pair. */
function makeCerts(dir: string): void {
  openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=cdk8s-mlflow-test-ca', '-days', '2', '-out', 'ca.crt'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' +
    'extendedKeyUsage=serverAuth\n');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const leaf = (name: string, subj: string, ext: string) => {
    openssl(['genrsa', '-out', `${name}.key`, '2048'], dir);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-extfile', ext, '-out', `${name}.crt`], dir);
  };
  leaf('server', '/CN=kube-apiserver', 'server.ext');
  leaf('admin', '/O=system:masters/CN=admin', 'client.ext');
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function writeKubeconfig(file: string, dir: string, port: number): void {
  const b64 = (f: string) => fs.readFileSync(path.join(dir, f)).toString('base64');
  fs.writeFileSync(file, [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: https://127.0.0.1:${port}`,
    `    certificate-authority-data: ${b64('ca.crt')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64('admin.crt')}`,
    `    client-key-data: ${b64('admin.key')}`,
    'contexts:',
    '- name: test',
    '  context: { cluster: test, user: admin }',
    'current-context: test',
    '',
  ].join('\n'), { mode: 0o600 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function httpsGet(port: number, urlPath: string, dir: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get({
      host: '127.0.0.1', port, path: urlPath, timeout: 2000,
      ca: fs.readFileSync(path.join(dir, 'ca.crt')),
      cert: fs.readFileSync(path.join(dir, 'admin.crt')),
      key: fs.readFileSync(path.join(dir, 'admin.key')),
    }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
  });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number,
  procs: ChildProcess[], logDir: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`${what}: a control-plane process exited early (${dead.spawnfile}); logs in ${logDir}`);
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms; logs in ${logDir}`);
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

async function startClusterOnce(): Promise<Cluster> {
  const k8s = binDir('K8S_BIN');
  const etcdBin = path.join(binDir('ETCD_BIN'), 'etcd');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mlflow-cluster-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  makeCerts(dir);
  const [etcdClient, etcdPeer, apiPort, kcmPort] = await freePorts(4);
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, dir, apiPort);

  const procs: ChildProcess[] = [];
  let stopped = false;
  const killAll = (signal: NodeJS.Signals) => {
    for (const p of procs) {
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
        try { process.kill(p.pid, signal); } catch { /* already gone */ }
      }
    }
  };
  const onExit = () => killAll('SIGKILL');
  process.on('exit', onExit);

  const start = (name: string, bin: string, args: string[]): ChildProcess => {
    const log = fs.openSync(path.join(logDir, `${name}.log`), 'a');
    const p = spawn(bin, args, { cwd: dir, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    procs.push(p);
    if (process.env.CLUSTER_PIDS_FILE && p.pid !== undefined) {
      fs.appendFileSync(process.env.CLUSTER_PIDS_FILE, `${p.pid}\n`);
    }
    return p;
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The controller manager and the API server first, etcd last.
    for (const group of [procs.slice(1).reverse(), procs.slice(0, 1)]) {
      for (const p of group) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (group.some((p) => p.exitCode === null && p.signalCode === null) && Date.now() < deadline) await sleep(100);
      for (const p of group) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    process.off('exit', onExit);
    if (process.env.KEEP_CLUSTER_DIR !== '1') fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    start('etcd', etcdBin, [
      '--name=default', `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`, `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync', '--log-level=warn',
    ]);
    start('kube-apiserver', path.join(k8s, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      '--endpoint-reconciler-type=none',
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${path.join(dir, 'server.crt')}`, `--tls-private-key-file=${path.join(dir, 'server.key')}`,
      `--client-ca-file=${path.join(dir, 'ca.crt')}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true', // as kubeadm and most clusters set it
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // PodSecurity is in the default admission set; naming it makes the intent explicit.
      '--enable-admission-plugins=PodSecurity',
      '--v=1',
    ]);
    await waitFor('kube-apiserver', async () => (await httpsGet(apiPort, '/readyz', dir)) === 200, 90_000, procs, logDir);

    start('kube-controller-manager', path.join(k8s, 'kube-controller-manager'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`, `--cert-dir=${path.join(dir, 'kcm-certs')}`,
      `--service-account-private-key-file=${path.join(dir, 'sa.key')}`,
      `--root-ca-file=${path.join(dir, 'ca.crt')}`,
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      '--controllers=*',
      // Retry failed Pod creations quickly and sync fast: nothing else runs on this cluster.
      '--concurrent-gc-syncs=5',
      '--v=1',
    ]);
    // The serviceaccount controller creates `default` in every namespace: the controller manager is working.
    await waitFor('kube-controller-manager',
      () => runKubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name']).code === 0,
      90_000, procs, logDir);
  } catch (e) {
    const tail = (f: string) => {
      try { return fs.readFileSync(path.join(logDir, f), 'utf8').split('\n').slice(-30).join('\n'); } catch { return ''; }
    };
    const detail = ['etcd.log', 'kube-apiserver.log', 'kube-controller-manager.log']
      .map((f) => `--- ${f} (tail)\n${tail(f)}`).join('\n');
    await stop();
    throw new Error(`${(e as Error).message}\n${detail}`);
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
