import { spawnSync } from 'child_process';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

// Jest transpiles without type-checking; this is where types are checked, once, for everything.
test('the whole project type-checks (tsc --noEmit, strict)', () => {
  const result = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', path.join(root, 'tsconfig.json')], { encoding: 'utf8' });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
}, 120_000);
