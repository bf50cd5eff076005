import { spawnSync } from 'child_process';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

// Jest transpiles without type-checking; this is where types are checked, once, for everything.
test.each(['tsconfig.json', 'cluster/tsconfig.json'])('the project type-checks with %s (tsc --noEmit, strict)', (config) => {
  const result = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', path.join(root, config)], { encoding: 'utf8' });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
}, 120_000);
