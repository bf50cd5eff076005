#!/usr/bin/env node
// Runs main.ts without type-checking it: esbuild turns main.ts and lib/ into one file in
// milliseconds, so the synth is never stale after an edit and takes well under a second.
// Types are checked by `npm test` (tsc --noEmit over the whole project).
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const outfile = path.join(root, 'build', 'synth', 'main.js');
esbuild.buildSync({
  entryPoints: [path.join(root, 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  logLevel: 'warning',
});
require(outfile);
