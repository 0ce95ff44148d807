/**
 * Scores that need no reference answer, on tokens and sentences (text.ts):
 * - diversity1, diversity2: distinct n-grams / all n-grams of the response (distinct-n).
 * - nonRepetition: 1 − (trigram occurrences that repeat an earlier trigram) / all trigrams.
 * - grounding: share of the response's content tokens (tokens not in
 *   STOPWORDS) that occur in the context.
 * - bigramSupport: share of the response's bigrams that occur in the context.
 * - consistency: 1 − (contradicted sentences / compared sentences). A response
 *   sentence is compared with its most similar sentence of the context (and of
 *   the response before it) when their content-token Jaccard similarity is at
 *   least CONTRADICTION_MIN_JACCARD; it is contradicted when exactly one of the
 *   two contains a negation marker (NEGATIONS). With no comparable pair the score is 1.
 * Each is undefined (skipped) when its denominator is 0.
 */
import { ngramCounts, sentences, tokenize } from './text.js';

/** English function words; content tokens are all other tokens. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an the and or but if then so of to in on at by for with from as is are was were be been being it its this that these those ' +
    'i you he she we they me him her us them my your his our their do does did has have had will would can could should may might must ' +
    'not no than there here what which who whom whose when where why how all any each some such very just also into out up down over'
  ).split(' '),
);

/** Negation markers (tokens; "n't" tokenises to the letter t after n, so contractions are listed whole). */
export const NEGATIONS: ReadonlySet<string> = new Set(
  'not no never none nobody nothing neither nor cannot without isn aren wasn weren doesn don didn hasn haven hadn won wouldn can couldn shouldn mustn'.split(
    ' ',
  ),
);

export const CONTRADICTION_MIN_JACCARD = 0.5;

export function distinctShare(tokens: readonly string[], n: number): number | undefined {
  const total = tokens.length - n + 1;
  if (total <= 0) return undefined;
  return ngramCounts(tokens, n).size / total;
}

export function nonRepetition(tokens: readonly string[]): number | undefined {
  return distinctShare(tokens, 3);
}

export function contentTokens(tokens: readonly string[]): string[] {
  return tokens.filter((t) => !STOPWORDS.has(t) && !NEGATIONS.has(t));
}

export function grounding(response: readonly string[], context: ReadonlySet<string>): number | undefined {
  const content = contentTokens(response);
  if (content.length === 0) return undefined;
  return content.filter((t) => context.has(t)).length / content.length;
}

export function bigramSupport(
  response: readonly string[],
  contextBigrams: ReadonlyMap<string, number>,
): number | undefined {
  const grams = ngramCounts(response, 2);
  let total = 0;
  let supported = 0;
  for (const [g, c] of grams) {
    total += c;
    if (contextBigrams.has(g)) supported += c;
  }
  return total === 0 ? undefined : supported / total;
}

interface SentenceInfo {
  content: Set<string>;
  negated: boolean;
}

function describeSentence(s: string): SentenceInfo {
  const tokens = tokenize(s);
  return { content: new Set(contentTokens(tokens)), negated: tokens.some((t) => NEGATIONS.has(t)) };
}

/** Posting-list entries consistency() visits at most (its cost bound): past it the remaining sentences are not compared. */
export const CONSISTENCY_BUDGET = 1_000_000;
/** Sentences of the response, and of the context, consistency() looks at (the first ones). */
export const CONSISTENCY_MAX_SENTENCES = 2000;

/**
 * The consistency score and how many sentences were compared / contradicted.
 * Each response sentence is matched through an inverted index (content token →
 * the earlier sentences holding it), so only sentences sharing a token are
 * looked at: linear in the text for ordinary prose. The cost is bounded for a
 * hostile text: the first CONSISTENCY_MAX_SENTENCES sentences of each side
 * are used, and at most `budget` posting entries are visited (every sentence
 * sharing the same tokens); the sentences left are not compared and
 * `truncated` is set.
 */
export function consistency(
  response: string,
  context: string,
  budget = CONSISTENCY_BUDGET,
): { score: number; compared: number; contradicted: number; truncated?: boolean } {
  // One past the limit is enough to know the text was cut (tokenizing every sentence of a long text was most of the cost).
  const ctxAll = sentences(context, CONSISTENCY_MAX_SENTENCES + 1);
  const ownAll = sentences(response, CONSISTENCY_MAX_SENTENCES + 1);
  let truncated = ctxAll.length > CONSISTENCY_MAX_SENTENCES || ownAll.length > CONSISTENCY_MAX_SENTENCES;
  const ctx = ctxAll.slice(0, CONSISTENCY_MAX_SENTENCES).map(describeSentence);
  const own = ownAll.slice(0, CONSISTENCY_MAX_SENTENCES).map(describeSentence);
  // Candidates in the order of the pairwise definition: context sentences, then earlier response sentences.
  const all: SentenceInfo[] = [...ctx];
  const postings = new Map<string, number[]>();
  const index = (k: number) => {
    for (const t of all[k]!.content) {
      const list = postings.get(t);
      if (list) list.push(k);
      else postings.set(t, [k]);
    }
  };
  for (let k = 0; k < ctx.length; k++) index(k);
  const shared = new Uint32Array(ctx.length + own.length);
  const touched: number[] = [];
  let compared = 0;
  let contradicted = 0;
  let visits = 0;
  for (const s of own) {
    for (const t of s.content) {
      const list = postings.get(t);
      if (!list) continue;
      visits += list.length;
      if (visits > budget) break;
      for (const k of list) if (shared[k]!++ === 0) touched.push(k);
    }
    if (visits > budget) {
      truncated = true;
      break;
    }
    let best = -1;
    let bestSim = CONTRADICTION_MIN_JACCARD;
    for (const k of touched) {
      const inter = shared[k]!;
      shared[k] = 0;
      const sim = inter / (s.content.size + all[k]!.content.size - inter);
      // Ties go to the later candidate, as in the pairwise definition.
      if (sim > bestSim || (sim === bestSim && k > best)) {
        best = k;
        bestSim = sim;
      }
    }
    touched.length = 0;
    all.push(s);
    index(all.length - 1);
    if (best < 0) continue;
    compared++;
    if (all[best]!.negated !== s.negated) contradicted++;
  }
  return {
    score: compared === 0 ? 1 : 1 - contradicted / compared,
    compared,
    contradicted,
    ...(truncated ? { truncated } : {}),
  };
}
