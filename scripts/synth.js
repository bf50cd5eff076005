#!/usr/bin/env node
// Runs main.ts without type-checking it (`npm test` type-checks the whole project).
//
// esbuild turns main.ts, lib/ and their dependencies (cdk8s, cdk8s-plus-28, constructs and the rest)
// into one CommonJS file, so a synth resolves and reads no module but that one. V8's code cache for
// that file is kept beside it, so a synth compiles next to nothing either.
//
// Never stale: the file is rebuilt whenever the content of main.ts, any file under lib/ or imports/,
// tsconfig.json, this script, or the installed dependencies (package-lock.json and npm's own record of
// node_modules, node_modules/.package-lock.json) differs from what it was built from. A code cache
// that V8 refuses (another Node version, other flags) is made again. The programs lib/ reads at
// synth time (lib/**/*.py) are copied next to the bundle, where its __dirname points.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'build', 'synth');
const outfile = path.join(outdir, 'main.js');
const stampFile = `${outfile}.sha256`;
const cacheFile = `${outfile}.v8cache`;

function inputs() {
  const files = ['main.ts', 'tsconfig.json', 'package-lock.json', 'node_modules/.package-lock.json', 'scripts/synth.js'].map((f) => path.join(root, f));
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return;
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
  const hash = crypto.createHash('sha256');
  for (const file of files) {
    hash.update(path.relative(root, file)).update('\0');
    if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Writes a file whole or not at all, so a synth running alongside never reads half of one. */
function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

const files = inputs();
const stamp = stampOf(files);
let built = false;
if (!fs.existsSync(stampFile) || fs.readFileSync(stampFile, 'utf8') !== stamp || !fs.existsSync(outfile)) {
  const result = require('esbuild').buildSync({
    entryPoints: [path.join(root, 'main.ts')],
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  fs.mkdirSync(outdir, { recursive: true });
  fs.rmSync(cacheFile, { force: true });
  writeAtomic(outfile, result.outputFiles[0].contents);
  // The programs lib/ reads at synth time (lib/**/*.py) go next to the bundle, where its __dirname points.
  for (const file of files.filter((f) => f.endsWith('.py'))) fs.copyFileSync(file, path.join(outdir, path.basename(file)));
  writeAtomic(stampFile, stamp);
  built = true;
}

// A synth is over in a tenth of a second: code that V8's optimizing compiler (TurboFan) would compile
// in the background is run a few times and never again, so that compile is pure cost (a fifth of the
// synth's CPU here). Eight times the default budget keeps it out of one synth; a long-running app
// (hundreds of stacks) still gets its hot code optimized.
require('v8').setFlagsFromString('--interrupt-budget=540672');

// What `require(outfile)` does, with V8's code cache read before and written after the first run.
const vm = require('vm');
const Module = require('module');
const source = fs.readFileSync(outfile, 'utf8');
const cachedData = !built && fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile) : undefined;
const script = new vm.Script(Module.wrap(source), { filename: outfile, cachedData });
const mainModule = new Module(outfile, module);
mainModule.filename = outfile;
script.runInThisContext()(mainModule.exports, Module.createRequire(outfile), mainModule, outfile, outdir);
if (cachedData === undefined || script.cachedDataRejected) {
  // After the run, so the cache holds every function the synth compiled, not only the top level.
  // Only a speed-up: a synth that wrote its YAML does not fail for want of it.
  try {
    writeAtomic(cacheFile, script.createCachedData());
  } catch {
    // the next synth tries again
  }
}
