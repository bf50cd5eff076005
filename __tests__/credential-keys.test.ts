import * as fs from 'fs';
import * as path from 'path';
import { SecretKeys } from '../lib';
import { CREDENTIAL_KEYS } from '../lib/credentials/credential-keys';

/** The credential key table (lib/credentials/credential-keys.ts) is the one list of `.env` keys; the docs follow it. */
const root = path.resolve(__dirname, '..');

test('every credential key is a SecretKeys name, once', () => {
  const keys = CREDENTIAL_KEYS.map((c) => c.key);
  expect(new Set(keys).size).toBe(keys.length);
  const secretKeys = Object.values(SecretKeys as unknown as Record<string, string>);
  expect(keys.filter((k) => !secretKeys.includes(k))).toEqual([]);
});

test('the README\'s .env table lists exactly the table\'s keys, required ones as required', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## `.env` reference'), readme.indexOf('## As a library'));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  const documented = rows.flatMap((row) => {
    const [keys, required] = row.split('|').slice(1, 3).map((c) => c.trim());
    return [...keys.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => ({ key: m[1], required: required === 'yes' }));
  });
  expect(documented.sort((a, b) => a.key.localeCompare(b.key))).toEqual(
    CREDENTIAL_KEYS.map((c) => ({ key: c.key, required: c.required === true })).sort((a, b) => a.key.localeCompare(b.key)),
  );
});

test('.env.example holds every required key', () => {
  const example = fs.readFileSync(path.join(root, '.env.example'), 'utf8');
  const present = [...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
  expect(CREDENTIAL_KEYS.filter((c) => c.required && !present.includes(c.key)).map((c) => c.key)).toEqual([]);
});
