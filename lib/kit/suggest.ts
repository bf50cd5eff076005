import { closest, distance } from 'fastest-levenshtein';

/** ` (did you mean X?)` when a known name is close to `name` (a typo), else empty. */
export function didYouMean(name: string, known: readonly string[]): string {
  if (known.length === 0) return '';
  const best = closest(name, [...known]);
  return distance(name.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(best.length / 4)) ? ` (did you mean ${best}?)` : '';
}
