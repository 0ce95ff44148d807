/**
 * Text units every score is defined on. A token is a run of letters, marks and
 * digits after NFKC normalisation and lower-casing; in scripts written without
 * spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) each character is
 * a token. Sentences end at . ! ? 。！？ or a line break.
 */
const UNSPACED = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}`;
const TOKEN = new RegExp(String.raw`[${UNSPACED}]|(?:(?![${UNSPACED}])[\p{L}\p{M}\p{N}])+`, 'gu');
const SENTENCE_END = /[.!?。！？\n]+/u;

export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

export function tokenize(text: string): string[] {
  return normalizeText(text).match(TOKEN) ?? [];
}

export function sentences(text: string, max = Infinity): string[] {
  const out: string[] = [];
  for (const part of text.split(SENTENCE_END)) {
    if (out.length >= max) break;
    const s = part.trim();
    if (tokenize(s).length > 0) out.push(s);
  }
  return out;
}

/** Code points (what a user calls characters), not UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Occurrences of each n-gram (tokens joined by U+0001, which no token contains). */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    // Concatenation, not slice + join: no array per position (this loop dominated /v1/evaluate's time).
    let g = tokens[i]!;
    for (let k = 1; k < n; k++) g += '\u0001' + tokens[i + k]!;
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  return counts;
}

/** Size of the multiset intersection of two count maps. */
export function overlapCount(a: Map<string, number>, b: Map<string, number>): number {
  let n = 0;
  for (const [g, c] of a) n += Math.min(c, b.get(g) ?? 0);
  return n;
}

/** Length of the longest common subsequence, O(|a|·|b|) time and O(|b|) memory. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = ai === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** Whether `needle` (tokenised) occurs as a contiguous run in `haystack`. */
export function containsPhrase(haystack: readonly string[], needle: readonly string[]): boolean {
  if (needle.length === 0) return true;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
