#!/usr/bin/env node
// Runs main.ts without type-checking it (`npm test` type-checks the whole project).
//
// esbuild turns main.ts, lib/ and their dependencies (cdk8s, cdk8s-plus-28, constructs and the rest)
// into one CommonJS file, so a synth resolves and reads no module but that one. V8's code cache for
// that file is kept beside it, so a synth compiles next to nothing either. In the bundle, the settings
// file's schema is already compiled (ajv's standalone code for lib/config/schema-check.ts), cdk8s
// writes its YAML through scripts/synth-yaml.js, and child_process, which cdk8s loads for helm and URLs
// and a synth never uses, is loaded on first call.
//
// Never stale: the file is rebuilt whenever the content of main.ts, any file under lib/ or imports/,
// tsconfig.json, this script, scripts/synth-yaml.js, or the installed dependencies (package-lock.json and npm's own record of
// node_modules, node_modules/.package-lock.json) differs from what it was built from. The contents are
// hashed only when a file's stat (inode, size, modification and change times) differs from the one
// recorded at the last hash. A code cache that V8 refuses (another Node version, other flags) is made
// again. The programs lib/ reads at synth time (lib/**/*.py) are copied next to the bundle, where its
// __dirname points.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'build', 'synth');
const outfile = path.join(outdir, 'main.js');
const stampFile = `${outfile}.sha256`;
const statFile = `${outfile}.stat`;
// A synth with a settings file runs code (the YAML parser, the schema check) one without never does: each
// kind keeps a code cache of its own. Whether there is one is decided as main.ts decides it.
const withSettings = Boolean(process.env.MLFLOW_CONFIG_FILE) || fs.existsSync('mlflow.yaml');
const cacheFiles = [`${outfile}.v8cache`, `${outfile}.settings.v8cache`];
const cacheFile = cacheFiles[withSettings ? 1 : 0];

function inputs() {
  const files = ['main.ts', 'tsconfig.json', 'package-lock.json', 'node_modules/.package-lock.json', 'scripts/synth.js', 'scripts/synth-yaml.js'].map((f) => path.join(root, f));
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
  const hash = require('crypto').createHash('sha256');
  for (const file of files) {
    hash.update(path.relative(root, file)).update('\0');
    if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Each input's stat, and the latest time one was changed (ms since the epoch). */
function statOf(files) {
  let newest = 0;
  const lines = files.map((file) => {
    const s = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!s) return `${file} -`;
    newest = Math.max(newest, Number(s.mtimeNs / 1000000n), Number(s.ctimeNs / 1000000n));
    return `${file} ${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
  });
  return { key: lines.join('\n'), newest };
}

/** The file's content, or undefined if there is none. */
function readIfAny(file, encoding) {
  try {
    return fs.readFileSync(file, encoding);
  } catch {
    return undefined;
  }
}

/** Writes a file whole or not at all, so a synth running alongside never reads half of one. */
function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

async function build(files, stamp) {
  const esbuild = require('esbuild');
  // CONFIG_SCHEMA and AJV_OPTIONS as lib/ has them now, compiled by ajv into standalone code.
  const Ajv = require('ajv').default;
  const standaloneCode = require('ajv/dist/standalone').default;
  const schema = esbuild.buildSync({
    stdin: { contents: "export { CONFIG_SCHEMA } from './lib/config/schema'; export { AJV_OPTIONS } from './lib/config/schema-check';", resolveDir: root, loader: 'ts' },
    bundle: true, write: false, platform: 'node', format: 'cjs', packages: 'external', logLevel: 'warning',
  });
  const lib = { exports: {} };
  new Function('module', 'exports', 'require', schema.outputFiles[0].text)(lib, lib.exports, require);
  const ajv = new Ajv({ ...lib.exports.AJV_OPTIONS, code: { source: true } });
  const validator = standaloneCode(ajv, ajv.compile(lib.exports.CONFIG_SCHEMA));

  const childProcess = require('child_process');
  const lazyChildProcess = Object.keys(childProcess).filter((name) => typeof childProcess[name] === 'function')
    .map((name) => `exports.${name} = (...args) => require('child_process').${name}(...args);`).join('\n');
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'main.ts')],
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Shorter names make a smaller file and code cache to read; nothing in the synth reads a function's name.
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [{
      name: 'synth',
      setup(b) {
        b.onResolve({ filter: /^\.\/schema-check$/ }, (args) => (args.importer.endsWith(path.join('lib', 'config', 'settings-file.ts')) ? { path: 'schema-check', namespace: 'synth' } : undefined));
        b.onResolve({ filter: /^child_process$/ }, () => ({ path: 'child_process', namespace: 'synth' }));
        b.onResolve({ filter: /^schema-validator$/, namespace: 'synth' }, () => ({ path: 'schema-validator', namespace: 'synth' }));
        b.onLoad({ filter: /^schema-check$/, namespace: 'synth' }, () => ({
          contents: "const validate = require('schema-validator');\nexports.schemaViolation = (settings) => (validate(settings) ? undefined : validate.errors[0]);",
          loader: 'js',
        }));
        b.onLoad({ filter: /^schema-validator$/, namespace: 'synth' }, () => ({ contents: validator, resolveDir: root, loader: 'js' }));
        b.onLoad({ filter: /^child_process$/, namespace: 'synth' }, () => ({ contents: lazyChildProcess, loader: 'js' }));
        // cdk8s's yaml package, with scripts/synth-yaml.js writing what it knows; resolved where cdk8s resolves it.
        b.onResolve({ filter: /^yaml$/ }, (args) => (/[\\/]cdk8s[\\/]lib[\\/]yaml\.js$/.test(args.importer) ? { path: 'yaml', namespace: 'synth', pluginData: path.dirname(args.importer) } : undefined));
        b.onLoad({ filter: /^yaml$/, namespace: 'synth' }, (args) => ({
          contents: `const yaml = require('yaml');\nconst fast = require(${JSON.stringify(path.join(__dirname, 'synth-yaml.js'))}).stringifier(yaml);\n`
            + 'module.exports = { ...yaml, stringify: (value, ...rest) => (rest.length === 1 ? fast(value, rest[0]) : undefined) ?? yaml.stringify(value, ...rest) };',
          resolveDir: args.pluginData,
          loader: 'js',
        }));
      },
    }],
  });
  fs.mkdirSync(outdir, { recursive: true });
  for (const file of cacheFiles) fs.rmSync(file, { force: true });
  writeAtomic(outfile, result.outputFiles[0].contents);
  // The programs lib/ reads at synth time (lib/**/*.py) go next to the bundle, where its __dirname points.
  for (const file of files.filter((f) => f.endsWith('.py'))) fs.copyFileSync(file, path.join(outdir, path.basename(file)));
  writeAtomic(stampFile, stamp);
}

function run(built) {
  // A synth is over in a tenth of a second: code that V8's optimizing compiler (TurboFan) would compile
  // in the background is run a few times and never again, so that compile is pure cost (without the
  // budget a synth takes an eighth longer here). Eight times the default budget keeps it out of one
  // synth; a long-running app (hundreds of stacks) still gets its hot code optimized.
  require('v8').setFlagsFromString('--interrupt-budget=540672');

  // What `require(outfile)` does, with V8's code cache read before and written after the first run.
  const vm = require('vm');
  const Module = require('module');
  const source = fs.readFileSync(outfile, 'utf8');
  const cachedData = built ? undefined : readIfAny(cacheFile);
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
}

const files = inputs();
const stat = statOf(files);
if (readIfAny(statFile, 'utf8') === stat.key && fs.existsSync(outfile)) {
  run(false);
} else {
  const stamp = stampOf(files);
  // The stat is recorded only when no input changed in the last two seconds: a file written in the
  // same tick of the file system's clock as this stat could otherwise keep the recorded one.
  const trust = () => (stat.newest < Date.now() - 2000 ? writeAtomic(statFile, stat.key) : fs.rmSync(statFile, { force: true }));
  if (readIfAny(stampFile, 'utf8') === stamp && fs.existsSync(outfile)) {
    trust();
    run(false);
  } else {
    fs.rmSync(statFile, { force: true });
    build(files, stamp).then(() => {
      trust();
      run(true);
    });
  }
}
