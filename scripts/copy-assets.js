#!/usr/bin/env node
// Copies the programs lib/ reads at synth time (lib/**/*.py) next to the compiled JavaScript.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const copy = (dir) => {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) copy(rel);
    else if (entry.name.endsWith('.py')) {
      fs.mkdirSync(path.join(root, 'build', dir), { recursive: true });
      fs.copyFileSync(path.join(root, rel), path.join(root, 'build', rel));
    }
  }
};
copy('lib');
