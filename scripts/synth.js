#!/usr/bin/env node
// The app as `npm run synth` and cdk8s.yaml run it: main.ts, not type-checked (`npm test` does that).
//
// esbuild bundles main.ts, lib/ and their dependencies into build/synth/main.js, with the programs lib/
// reads at synth time (lib/**/*.py) beside it, where its __dirname points. A synth loads that one file
// instead of compiling and resolving hundreds of modules: a fifth of the time of `tsx main.ts`. The
// bundle is rebuilt (about 0.7 s) when the content hash of what it is made from changes. Files are
// written under a temporary name and renamed, so a synth running alongside never reads half of one.
// Nothing else is tuned: the synth only has to stay well under a second (`npm run bench` measures it).
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'build', 'synth');
const outfile = path.join(outdir, 'main.js');
const stampFile = `${outfile}.sha256`;

/** What the bundle is made from: main.ts, lib/, imports/, this script and the installed dependencies. */
function inputs() {
  const files = ['main.ts', 'tsconfig.json', 'package-lock.json', 'node_modules/.package-lock.json', 'scripts/synth.js'].map((f) => path.join(root, f));
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(path.join(root, 'lib'));
  walk(path.join(root, 'imports'));
  return files.sort();
}

function stampOf(files) {
  const hash = require('crypto').createHash('sha256');
  for (const file of files) {
    hash.update(path.relative(root, file)).update('\0');
    if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function readIfAny(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function build(files, stamp) {
  const result = require('esbuild').buildSync({
    entryPoints: [path.join(root, 'main.ts')],
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  fs.mkdirSync(outdir, { recursive: true });
  for (const file of files.filter((f) => f.endsWith('.py'))) writeAtomic(path.join(outdir, path.basename(file)), fs.readFileSync(file));
  writeAtomic(outfile, result.outputFiles[0].contents);
  writeAtomic(stampFile, stamp);
}

const files = inputs();
const stamp = stampOf(files);
if (readIfAny(stampFile) !== stamp || !fs.existsSync(outfile)) build(files, stamp);
require(outfile);
