// The YAML of a manifest, byte for byte what `YAML.stringify(doc, { keepUndefined: true, lineWidth: 0,
// version: '1.1' })` of the yaml package (cdk8s's Yaml.stringify) writes, in a tenth of its time.
// scripts/synth.js puts it in front of cdk8s's copy of the yaml package in the synth bundle.
//
// It writes only what a manifest holds: plain objects, arrays, strings, safe integers, booleans and
// null. Anything else, and anything the yaml package would write in a form not followed here (escaped
// or multi-line quoted strings, `|+` blocks, document markers, an object met twice, which yaml writes as
// an alias), makes `stringify` return undefined, and the caller asks the yaml package. The rules below
// follow yaml's stringifyString.js, stringifyPair.js and stringifyCollection.js;
// __tests__/synth-yaml.test.ts holds them to the package's own output.

/** `stringify` for the given yaml package. */
function stringifier(YAML) {
  const schema = new YAML.Document(null, { version: '1.1' }).schema;
  // What another YAML 1.1 type (a number, a boolean, null, a date, ...) would read as its own.
  const tests = [...schema.tags, ...(schema.compat ?? [])].filter((t) => t.default && t.tag !== 'tag:yaml.org,2002:str' && t.test).map((t) => t.test);
  if (tests.some((re) => re.flags)) throw new Error('a YAML 1.1 tag test with flags');
  const otherType = new RegExp(tests.map((re) => `(?:${re.source})`).join('|'));

  // Characters yaml writes only as escapes in double quotes (yaml's stringifyString).
  // eslint-disable-next-line no-control-regex
  const escaped = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u{D800}-\u{DFFF}]/u;
  const documentMarker = /^(%|---|\.\.\.)/m;

  class Unsupported extends Error {}
  const unsupported = () => {
    throw new Unsupported();
  };

  /** A one-line string: plain when YAML reads it back as this string, else quoted. */
  function inline(s) {
    if (s === '<<') return s; // yaml takes it for the merge key and writes it bare
    if (/^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/.test(s) || otherType.test(s)) {
      // yaml's quotedString: single quotes only when the string has a double quote and no single one
      return s.includes('"') && !s.includes("'") ? `'${s}'` : JSON.stringify(s);
    }
    return s;
  }

  function scalar(v, indent) {
    if (v === null) return 'null';
    if (typeof v === 'boolean') return String(v);
    if (typeof v === 'number') return Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : unsupported();
    if (typeof v !== 'string') unsupported();
    // control characters (escaped by yaml), document markers and lines starting with `%` (indented or quoted)
    if (escaped.test(v) || documentMarker.test(v)) unsupported();
    if (!v.includes('\n')) return inline(v);
    return block(v, indent);
  }

  /** A multi-line string as a literal block (`|`, `|-`), the way yaml's blockString writes it. */
  function block(v, indent) {
    if (/\n[\t ]+$/.test(v)) unsupported(); // yaml quotes it over several lines
    let endStart = v.length;
    while (endStart > 0 && '\n\t '.includes(v[endStart - 1])) endStart--;
    let end = v.substring(endStart);
    const endNl = end.indexOf('\n');
    let chomp = '';
    if (endNl === -1) chomp = '-';
    else if (v === end || endNl !== end.length - 1) unsupported(); // `|+`
    if (end) {
      v = v.slice(0, -end.length);
      if (end.endsWith('\n')) end = end.slice(0, -1);
      end = end.replace(/(^|(?<!\n))\n+(?!\n|$)/g, `$&${indent}`);
    }
    let startWithSpace = false;
    let startEnd = 0;
    let startNl = -1;
    for (; startEnd < v.length; ++startEnd) {
      if (v[startEnd] === ' ') startWithSpace = true;
      else if (v[startEnd] === '\n') startNl = startEnd;
      else break;
    }
    let start = v.substring(0, startNl + 1);
    if (start) {
      v = v.substring(start.length);
      start = start.replace(/\n+/g, `$&${indent}`);
    }
    return `|${startWithSpace ? '2' : ''}${chomp}\n${indent}${start}${v.replace(/\n+/g, `$&${indent}`)}${end}`;
  }

  function isPlainObject(v) {
    const proto = Object.getPrototypeOf(v);
    return (proto === Object.prototype || proto === null) && typeof v.toJSON !== 'function';
  }

  /** `v` as the value of a block collection item whose lines after the first start with `indent`. */
  function node(v, indent, seen) {
    if (v === null || typeof v !== 'object') return scalar(v, indent);
    if (seen.has(v)) unsupported();
    seen.add(v);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      const items = [];
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) unsupported();
        items.push(`- ${node(v[i], `${indent}  `, seen)}`);
      }
      return items.join(`\n${indent}`);
    }
    if (!isPlainObject(v)) unsupported();
    const lines = [];
    for (const key of Object.keys(v)) {
      const value = v[key];
      if (value === undefined) unsupported();
      if (key.length > 1000 || key.includes('\n') || escaped.test(key) || documentMarker.test(key)) unsupported();
      const inner = `${indent}  `;
      const str = node(value, inner, seen);
      // A nested non-empty collection starts on the next line; a scalar (or a block's header) on this one.
      const onNextLine = value !== null && typeof value === 'object' && Object.keys(value).length > 0;
      lines.push(`${inline(key)}:${onNextLine ? `\n${inner}` : ' '}${str}`);
    }
    return lines.length ? lines.join(`\n${indent}`) : '{}';
  }

  /** The YAML yaml.stringify(value, options) writes, or undefined where this module does not know it. */
  function stringify(value, options) {
    if (options?.keepUndefined !== true || options.lineWidth !== 0 || options.version !== '1.1' || Object.keys(options).length !== 3) return undefined;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    try {
      return `${node(value, '', new Set())}\n`;
    } catch (err) {
      if (err instanceof Unsupported) return undefined;
      throw err;
    }
  }

  return stringify;
}

module.exports = { stringifier };
