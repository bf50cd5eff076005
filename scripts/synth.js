#!/usr/bin/env node
// Runs main.ts without type-checking it (`npm test` type-checks the whole project).
// esbuild turns main.ts and lib/ into one CommonJS file. The file is rebuilt whenever the content
// of main.ts or any file under lib/ or imports/ differs from what it was built from, so the synth
// is never stale after an edit, and an unchanged tree skips the build. The programs lib/ reads at
// synth time (lib/**/*.py) are copied next to the bundle, where its __dirname points.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'build', 'synth');
const outfile = path.join(outdir, 'main.js');
const stampFile = path.join(outdir, 'main.js.sha256');

function sources() {
  const files = [path.join(root, 'main.ts')];
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') || entry.name.endsWith('.py')) files.push(full);
    }
  };
  walk(path.join(root, 'lib'));
  walk(path.join(root, 'imports'));
  return files.sort();
}

const hash = crypto.createHash('sha256');
for (const file of sources()) hash.update(file).update('\0').update(fs.readFileSync(file)).update('\0');
const stamp = hash.digest('hex');

if (!fs.existsSync(outfile) || !fs.existsSync(stampFile) || fs.readFileSync(stampFile, 'utf8') !== stamp) {
  require('esbuild').buildSync({
    entryPoints: [path.join(root, 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    logLevel: 'warning',
  });
  for (const file of sources().filter((f) => f.endsWith('.py'))) fs.copyFileSync(file, path.join(outdir, path.basename(file)));
  fs.writeFileSync(stampFile, stamp);
}
require(outfile);
