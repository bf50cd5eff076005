import * as path from 'path';
import { scenarioNames, synth } from '../e2e/matrix';

/**
 * scripts/synth-yaml.js writes the synth's manifests in place of the yaml package cdk8s writes them
 * with. It must write the same bytes, or decline (undefined) and leave the document to the package.
 */
const YAML = require(require.resolve('yaml', { paths: [path.dirname(require.resolve('cdk8s'))] }));
const fast: (value: unknown, options: unknown) => string | undefined = require('../scripts/synth-yaml.js').stringifier(YAML);
const OPTIONS = { keepUndefined: true, lineWidth: 0, version: '1.1' }; // cdk8s's Yaml.stringify

test.each(scenarioNames())('scenario %s: every manifest is written byte for byte as the yaml package writes it', (name) => {
  for (const manifest of synth(name)) expect(fast(manifest, OPTIONS)).toBe(YAML.stringify(manifest, OPTIONS));
});

const STRINGS = [
  '', ' ', 'a', 'a b', ' a', 'a ', 'é', '日本', 'a\u00a0b', 'a\u2028b', 'a\tb', '\ta', 'a\t',
  // what YAML 1.1 reads as another type
  'true', 'True', 'TRUE', 'yes', 'Yes', 'no', 'on', 'Off', 'y', 'n', 'Y', 'N', 'null', 'Null', '~', '1', '-1', '+1', '0x1f', '0o17',
  '017', '0b101', '1_000', '1.5', '.5', '1e3', '-1.2e-3', '.inf', '-.inf', '.nan', '.NaN', '1:20', '1:20:30.5', '2001-12-14',
  '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5', '=', '<<', '250m', '10Gi', '0.5',
  // indicators and quotes
  '-', '?', '- a', '? a', ':', 'a:', 'a: b', 'a:b', 'http://x:80/y?q=1#f', '#', 'a #b', 'a#b', '!a', '&a', '*a', '|', '>',
  '@a', '`a', '"a', 'a"b', "'a", "a'b", `a"b'c`, '[a', 'a]', '{a', 'a}', 'a,b', ',a', 'a\\b', '"', "'",
  // several lines
  'a\nb', 'a\nb\n', 'a\n\nb', '\na', '\n\na', ' a\nb', '  a\n b\n', 'a\n b', 'a \nb', 'a\nb ', 'a\nb\t', 'a\n#b', 'a\n- b',
  'a: b\nc', 'x\ny\n  z\n', 'line\n\n\nend\n', '#!/bin/sh\nset -eu\necho "$X" \'y\'\n',
];
/** Left to the yaml package: escapes, document markers, `|+` blocks, blocks ending in a blank line. */
const DECLINED = ['a\r\nb', 'a\u0007', '---', '--- a', '...', 'a\n---', 'a\n...\nb', '%YAML', '%a', 'a\n%b', 'a\nb\n\n', 'a\n\n\n', '\n', '\n\n', ' \n', 'a\n ', 'a\n\t'];

test('a string is written as the yaml package writes it, as a value, an item and a key, at any depth', () => {
  for (const s of [...STRINGS, ...DECLINED]) {
    for (const doc of [{ k: s }, { k: [s] }, { k: { k2: s } }, { k: [{ k2: s, k3: [s, s] }] }, { k: [[s]] }, { [s]: 'v' }, { a: { [s]: [s] } }]) {
      expect([s, fast(doc, OPTIONS) ?? YAML.stringify(doc, OPTIONS)]).toEqual([s, YAML.stringify(doc, OPTIONS)]);
    }
  }
  expect([...STRINGS, ...DECLINED].filter((s) => fast({ k: s }, OPTIONS) === undefined)).toEqual(DECLINED);
  // A key of several lines is written as an explicit key (`? `), which this module leaves to the package.
  expect([...STRINGS, ...DECLINED].filter((s) => fast({ [s]: 'v' }, OPTIONS) === undefined)).toEqual([...STRINGS.filter((s) => s.includes('\n')), ...DECLINED]);
});

test('collections, numbers, booleans and null are written as the yaml package writes them', () => {
  const docs = [{}, { a: {} }, { a: [] }, { a: [[]] }, { a: [{}] }, { a: [[1, 2], [3, [4]]] }, { a: null, b: true, c: false, d: 0, e: -5, f: 65535 },
    { a: [null, true, 1, 'x', { b: [{ c: 'd' }] }] }, { 1: 'a', 2: { '03': 'b' } }];
  for (const doc of docs) expect(fast(doc, OPTIONS)).toBe(YAML.stringify(doc, OPTIONS));
});

test('what it does not know it leaves to the yaml package', () => {
  const shared = { a: 1 };
  for (const doc of [{ a: 1.5 }, { a: -0 }, { a: 2 ** 60 }, { a: undefined }, { a: new Date(0) }, { a: shared, b: shared }, { a: Object.assign([1], { 2: 2 }) }, { a: Buffer.from('x') }, [1], 'x']) {
    expect(fast(doc, OPTIONS)).toBeUndefined();
  }
  expect(fast({ a: 1 }, { lineWidth: 0 })).toBeUndefined();
  expect(fast({ a: 1 }, { ...OPTIONS, indent: 4 })).toBeUndefined();
});
