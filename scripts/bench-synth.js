#!/usr/bin/env node
// Synth benchmarks; prints medians. Not a test: numbers depend on the machine.
//  1. The README's synth command (`npm run --silent synth`), `node scripts/synth.js` (what it runs),
//     also with a settings file (mlflow.example.yaml), and, given --chart, `helm template` of that
//     chart: the commands alternated in one run (each round in the reverse order of the one before),
//     medians and ratios.
//  2. In-process synth of 1, 10 and 100 stacks in one app: time and peak memory, each in a fresh process.
// Usage: npm run bench -- [--runs N] [--chart DIR [--helm BIN] [helm template flags...]] [--only-commands]
//   (--only-commands skips part 2)
//   e.g. npm run bench -- --chart ~/charts/mlflow --set postgresql.enabled=true --set minio.enabled=true
const { spawnSync, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
}
function flag(name) {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
}
const runs = Number(option('--runs', '15'));
const chart = option('--chart');
const helm = option('--helm', 'helm');
const onlyCommands = flag('--only-commands');
const helmFlags = args; // whatever is left goes to `helm template`
if (!chart && helmFlags.length) throw new Error(`unknown arguments: ${helmFlags.join(' ')}`);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-bench-'));
process.on('exit', () => fs.rmSync(outdir, { recursive: true, force: true }));
const env = { ...process.env, CDK8S_CHECK_UPGRADE: 'false', CDK8S_OUTDIR: outdir, MLFLOW_ENV_FILE: '.env.example' };

const commands = [
  { label: 'npm run --silent synth', cmd: 'npm', args: ['run', '--silent', 'synth'] },
  { label: 'node scripts/synth.js', cmd: process.execPath, args: ['scripts/synth.js'] },
  { label: 'same, with mlflow.example.yaml', cmd: process.execPath, args: ['scripts/synth.js'], env: { ...env, MLFLOW_CONFIG_FILE: 'mlflow.example.yaml' } },
];
if (chart) commands.push({ label: 'helm template', cmd: helm, args: ['template', 'mlflow', path.resolve(chart), ...helmFlags] });

function once(c) {
  const start = process.hrtime.bigint();
  const r = spawnSync(c.cmd, c.args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: c.env ?? env });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${c.cmd} ${c.args.join(' ')} failed: ${r.error ?? r.stderr}`);
  return seconds;
}

// One untimed run each: builds the synth bundle if an edit made it stale.
for (const c of commands) once(c);
const times = new Map(commands.map((c) => [c, []]));
for (let round = 0; round < runs; round++) {
  const order = round % 2 ? [...commands].reverse() : commands;
  for (const c of order) times.get(c).push(once(c));
}

console.log(`synth commands, alternated, ${runs} rounds (seconds, wall)`);
console.log('command                              median     min     max');
for (const c of commands) {
  const t = times.get(c);
  console.log(`${c.label.padEnd(34)} ${median(t).toFixed(3).padStart(7)} ${Math.min(...t).toFixed(3).padStart(7)} ${Math.max(...t).toFixed(3).padStart(7)}`);
}
if (chart) {
  const helmTimes = times.get(commands[commands.length - 1]);
  console.log(`\nhelm template ${path.resolve(chart)} ${helmFlags.join(' ')}`);
  console.log(`${''.padEnd(52)} ratio of medians, median of the rounds' ratios`);
  for (const c of commands.slice(0, -1)) {
    const perRound = times.get(c).map((t, i) => t / helmTimes[i]);
    console.log(`${(c.label + ' / helm template').padEnd(52)} ${(median(times.get(c)) / median(helmTimes)).toFixed(2)}  ${median(perRound).toFixed(2)}`);
  }
}
if (onlyCommands) process.exit(0);

const worker = path.join(root, 'build', 'bench', 'bench-stacks.js');
require('esbuild').buildSync({ entryPoints: [path.join(root, 'scripts', 'bench-stacks.ts')], outfile: worker, bundle: true, platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' });
// The programs lib/ reads at synth time go next to the bundle, where its __dirname points.
const copyPrograms = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) copyPrograms(full);
    else if (entry.name.endsWith('.py')) fs.copyFileSync(full, path.join(path.dirname(worker), entry.name));
  }
};
copyPrograms(path.join(root, 'lib'));
console.log(`\nin-process synth of N stacks in one app, median of ${runs} fresh processes`);
console.log('stacks  objects  seconds  s/stack  peak RSS MiB');
for (const stacks of [1, 10, 100]) {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(JSON.parse(execFileSync(process.execPath, [worker, String(stacks)], { cwd: root, encoding: 'utf8' })));
  const seconds = median(results.map((r) => r.seconds));
  const rss = median(results.map((r) => r.peakRssMiB));
  console.log(`${String(stacks).padStart(6)} ${String(results[0].objects).padStart(8)} ${seconds.toFixed(3).padStart(8)} ${(seconds / stacks).toFixed(4).padStart(8)} ${rss.toFixed(0).padStart(13)}`);
}
