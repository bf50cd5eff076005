import { spawnSync } from 'child_process';
import * as path from 'path';
import madge from 'madge';

const root = path.resolve(__dirname, '..');

test('lib/ has no import cycle (madge, type imports included)', async () => {
  const graph = await madge(path.join(root, 'lib'), { fileExtensions: ['ts'], detectiveOptions: { ts: { skipTypeImports: false } } });
  expect(Object.keys(graph.obj()).length).toBeGreaterThan(20);
  expect(graph.circular()).toEqual([]);
}, 60_000);

test('the migration program is valid Python (python3 compiles it)', () => {
  const result = spawnSync('python3', ['-c', 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")', path.join(root, 'lib/server/migrate.py')], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
});

test('git tracks no key, certificate or log file', () => {
  const result = spawnSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' });
  expect(result.status).toBe(0);
  expect(result.stdout.split('\n').filter((f) => /\.(key|pem|crt|log)$/.test(f))).toEqual([]);
});
