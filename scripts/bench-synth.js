#!/usr/bin/env node
// Synth benchmarks; prints medians. Not a test: numbers depend on the machine.
//  1. The README's synth command (`npm run synth`) and its core (`node scripts/synth.js`), end to end.
//  2. In-process synth of 1, 10 and 100 stacks in one app: time and peak memory, each in a fresh process.
// Usage: npm run bench [-- --runs N]
const { spawnSync, execFileSync } = require('child_process');
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 9;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function timeCommand(cmd, args) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CDK8S_CHECK_UPGRADE: 'false' } });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return times;
}

console.log(`synth command, ${runs} runs each (seconds)`);
console.log('command                         median    min     max');
for (const [label, cmd, args] of [['npm run synth', 'npm', ['run', '--silent', 'synth']], ['node scripts/synth.js', process.execPath, ['scripts/synth.js']]]) {
  const t = timeCommand(cmd, args);
  console.log(`${label.padEnd(30)} ${median(t).toFixed(3).padStart(7)} ${Math.min(...t).toFixed(3).padStart(7)} ${Math.max(...t).toFixed(3).padStart(7)}`);
}

const worker = path.join(root, 'build', 'bench', 'bench-stacks.js');
esbuild.buildSync({ entryPoints: [path.join(root, 'scripts', 'bench-stacks.ts')], outfile: worker, bundle: true, platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' });
console.log(`\nin-process synth of N stacks in one app, median of ${runs} fresh processes`);
console.log('stacks  objects  seconds  s/stack  peak RSS MiB');
for (const stacks of [1, 10, 100]) {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(JSON.parse(execFileSync(process.execPath, [worker, String(stacks)], { cwd: root, encoding: 'utf8' })));
  const seconds = median(results.map((r) => r.seconds));
  const rss = median(results.map((r) => r.peakRssMiB));
  console.log(`${String(stacks).padStart(6)} ${String(results[0].objects).padStart(8)} ${seconds.toFixed(3).padStart(8)} ${(seconds / stacks).toFixed(4).padStart(8)} ${rss.toFixed(0).padStart(13)}`);
}
