import { spawnSync } from 'child_process';
import * as path from 'path';
import madge from 'madge';

const root = path.resolve(__dirname, '..');

test('lib/ has no import cycle (madge, type imports included)', async () => {
  const graph = await madge(path.join(root, 'lib'), { fileExtensions: ['ts'], detectiveOptions: { ts: { skipTypeImports: false } } });
  expect(Object.keys(graph.obj()).length).toBeGreaterThan(20);
  expect(graph.circular()).toEqual([]);
}, 60_000);

test('the migration, launcher and metrics listener programs are valid Python (python3 compiles them)', () => {
  const programs = ['migrate.py', 'serve.py', 'metrics_listener.py'].map((f) => path.join(root, 'lib/server', f));
  const result = spawnSync('python3', ['-c', 'import sys; [compile(open(f).read(), f, "exec") for f in sys.argv[1:]]', ...programs], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
});

test('git tracks no key, certificate or log file', () => {
  const result = spawnSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' });
  expect(result.status).toBe(0);
  expect(result.stdout.split('\n').filter((f) => /\.(key|pem|crt|log)$/.test(f))).toEqual([]);
});
