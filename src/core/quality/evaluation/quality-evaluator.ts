/**
 * QualityEvaluator.evaluateResponse(response, context, requirements): named
 * scores in [0, 1] (1 = best), each defined in SCORE_DEFINITIONS and computed
 * only from its inputs (no network, no randomness). A score whose inputs are
 * missing or whose denominator is 0 is left out and listed in `skipped`.
 */
import { WhaleError } from '../../../common/errors.js';
import { CalibrationWindow, classifierOutcome } from './calibration.js';
import { bigramSupport, consistency, distinctShare, grounding, nonRepetition } from './coherence-scores.js';
import type { EmbeddingSimilarity } from './embedding.js';
import { exactMatch, rougeL, tokenF1 } from './reference-scores.js';
import {
  charsetShare,
  checkRequirements,
  lengthWithin,
  scriptShare,
  termsPresentShare,
  type Requirements,
} from './requirement-scores.js';
import { SchemaWorker } from './schema-worker.js';
import { ngramCounts, tokenize } from './text.js';

/** Above this many tokens evaluateResponse yields to the event loop between its scores. */
const LONG_TEXT_TOKENS = 2_000;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export const SCORE_DEFINITIONS = {
  exactMatch: 'response and reference have the same token sequence (1) or not (0)',
  tokenF1: 'F1 of the token multisets of response and reference',
  rougeL: 'ROUGE-L F1: longest common token subsequence over response/reference lengths (first maxLcsTokens tokens)',
  correctness: 'classifier: the highest-probability class is the true label (1) or not (0)',
  confidence: 'classifier: the highest class probability',
  calibration:
    '1 − expected calibration error (10 equal-width bins) over the last calibrationWindow responses of the window key',
  brierSkill: '1 − mean Brier score / 2 over the same window',
  schemaValid: 'the response (JSON) validates against requirements.schema (1) or not (0)',
  lengthWithin: 'the response length in code points is within [minLength, maxLength] (1) or not (0)',
  requiredTerms: 'share of requirements.requiredTerms present as token sequences',
  forbiddenTermsAbsent: 'share of requirements.forbiddenTerms absent',
  charset: 'share of non-whitespace code points within requirements.charset',
  script: 'share of letters written in one of requirements.scripts',
  diversity1: 'distinct unigrams / unigrams of the response',
  diversity2: 'distinct bigrams / bigrams of the response',
  nonRepetition: 'distinct trigrams / trigrams of the response (1 − repeated-trigram share)',
  grounding: 'share of response content tokens (not stopwords) found in the context',
  bigramSupport: 'share of response bigrams found in the context',
  consistency:
    '1 − share of compared sentences whose closest context/earlier sentence (Jaccard ≥ 0.5) differs in negation',
  contextSimilarity: '(1 + cosine) / 2 of the embeddings of response and context (embedding model configured)',
  questionSimilarity: '(1 + cosine) / 2 of the embeddings of response and question (embedding model configured)',
} as const;

export type ScoreName = keyof typeof SCORE_DEFINITIONS;

export interface EvaluationContext {
  question?: string;
  reference?: string;
  /** Source text(s) the response should be grounded in. */
  context?: string | string[];
  /** The true class, for classifier responses. */
  label?: number;
  /** Calibration window key (e.g. the model id); default 'default'. */
  window?: string;
}

/** Text, a JSON value (checked against a schema), or a classifier's class probabilities. */
export type EvaluatedResponse = string | { probabilities: ArrayLike<number> } | unknown;

export interface ResponseEvaluation {
  scores: Partial<Record<ScoreName, number>>;
  /** Mean of the scores present. */
  overall: number;
  skipped: Partial<Record<ScoreName, string>>;
  details: {
    tokens: number;
    schemaErrors?: string[];
    contradicted?: number;
    compared?: number;
    consistencyTruncated?: boolean;
    calibrationSamples?: number;
  };
}

export interface QualityEvaluatorOptions {
  embedding?: EmbeddingSimilarity;
  /** Responses per calibration window (default 1000). */
  calibrationWindow?: number;
  /** Tokens of each side ROUGE-L looks at (default 4096; its cost is quadratic). */
  maxLcsTokens?: number;
  /** Calibration window keys kept (default 1024; the oldest is dropped). */
  maxWindows?: number;
  /** Time bound of one schema check (compile + validate, off the main thread; default 1000 ms). */
  schemaTimeoutMs?: number;
}

/** Longest calibration window key (context.window, a client's string). */
export const MAX_WINDOW_KEY_LENGTH = 256;

export class QualityEvaluator {
  private readonly windows = new Map<string, CalibrationWindow>();
  private readonly windowSize: number;
  private readonly maxLcs: number;
  private readonly maxWindows: number;
  private schemas: SchemaWorker | undefined;

  constructor(private readonly o: QualityEvaluatorOptions = {}) {
    this.windowSize = o.calibrationWindow ?? 1000;
    this.maxLcs = o.maxLcsTokens ?? 4096;
    this.maxWindows = o.maxWindows ?? 1024;
    new CalibrationWindow(this.windowSize); // validates the size
    for (const [k, v] of [
      ['maxLcsTokens', this.maxLcs],
      ['maxWindows', this.maxWindows],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new WhaleError('ERR_INVALID_OPTION', `options.${k}: must be an integer >= 1`, { field: `options.${k}` });
    }
  }

  async evaluateResponse(
    response: EvaluatedResponse,
    context: EvaluationContext = {},
    requirements: Requirements = {},
  ): Promise<ResponseEvaluation> {
    const ctx = checkContext(context);
    const req = checkRequirements(requirements);
    const scores: ResponseEvaluation['scores'] = {};
    const skipped: ResponseEvaluation['skipped'] = {};
    const details: ResponseEvaluation['details'] = { tokens: 0 };
    const set = (name: ScoreName, v: number | undefined, why: string) => {
      if (v === undefined) skipped[name] = why;
      else scores[name] = v;
    };

    const probabilities = classifierProbabilities(response);
    if (probabilities) this.classifierScores(probabilities, ctx, set, details);
    else
      for (const n of ['correctness', 'confidence', 'calibration', 'brierSkill'] as const)
        skipped[n] = 'not a classifier response';

    if (req.schema) {
      this.schemas ??= new SchemaWorker(
        this.o.schemaTimeoutMs === undefined ? {} : { timeoutMs: this.o.schemaTimeoutMs },
      );
      const r = await this.schemas.validate(response, req.schema);
      scores.schemaValid = r.score;
      if (r.errors.length) details.schemaErrors = r.errors;
    }
    const text = probabilities ? undefined : typeof response === 'string' ? response : JSON.stringify(response ?? null);
    if (text === undefined) return { scores, overall: mean(scores), skipped, details };

    const tokens = tokenize(text);
    details.tokens = tokens.length;
    // A long text's scores take tens of ms each: between them the event loop serves others (health probes).
    const pause = tokens.length > LONG_TEXT_TOKENS ? nextTurn : async () => undefined;
    await pause();
    if (ctx.reference !== undefined) {
      const ref = tokenize(ctx.reference);
      scores.exactMatch = exactMatch(tokens, ref);
      scores.tokenF1 = tokenF1(tokens, ref);
      scores.rougeL = rougeL(tokens, ref, this.maxLcs);
    } else for (const n of ['exactMatch', 'tokenF1', 'rougeL'] as const) skipped[n] = 'no reference';

    if (req.minLength !== undefined || req.maxLength !== undefined)
      scores.lengthWithin = lengthWithin(text, req.minLength, req.maxLength);
    if (req.requiredTerms) scores.requiredTerms = termsPresentShare(tokens, req.requiredTerms);
    if (req.forbiddenTerms) scores.forbiddenTermsAbsent = 1 - termsPresentShare(tokens, req.forbiddenTerms);
    if (req.charset) scores.charset = charsetShare(text, req.charset);
    if (req.scripts) scores.script = scriptShare(text, req.scripts);

    set('diversity1', distinctShare(tokens, 1), 'empty response');
    set('diversity2', distinctShare(tokens, 2), 'fewer than 2 tokens');
    set('nonRepetition', nonRepetition(tokens), 'fewer than 3 tokens');
    await pause();

    const contextText =
      ctx.context === undefined ? undefined : Array.isArray(ctx.context) ? ctx.context.join('\n') : ctx.context;
    if (contextText !== undefined) {
      const ctxTokens = tokenize(contextText);
      set('grounding', grounding(tokens, new Set(ctxTokens)), 'no content tokens in the response');
      set('bigramSupport', bigramSupport(tokens, ngramCounts(ctxTokens, 2)), 'fewer than 2 tokens');
    } else for (const n of ['grounding', 'bigramSupport'] as const) skipped[n] = 'no context';
    await pause();
    const c = consistency(text, contextText ?? '');
    scores.consistency = c.score;
    details.compared = c.compared;
    details.contradicted = c.contradicted;
    if (c.truncated) details.consistencyTruncated = true;
    await pause();

    await this.embeddingScores(text, ctx, contextText, set);
    return { scores, overall: mean(scores), skipped, details };
  }

  /** Stops the schema worker (if one was started). */
  async close(): Promise<void> {
    const w = this.schemas;
    this.schemas = undefined;
    await w?.close();
  }

  private classifierScores(
    p: ArrayLike<number>,
    ctx: EvaluationContext,
    set: (n: ScoreName, v: number | undefined, why: string) => void,
    details: ResponseEvaluation['details'],
  ): void {
    let confidence = 0;
    for (let k = 0; k < p.length; k++) confidence = Math.max(confidence, p[k]!);
    if (ctx.label === undefined) {
      classifierOutcome(p, 0); // validates the probabilities
      set('confidence', confidence, '');
      for (const n of ['correctness', 'calibration', 'brierSkill'] as const) set(n, undefined, 'no label');
      return;
    }
    const o = classifierOutcome(p, ctx.label);
    const w = this.window(ctx.window ?? 'default');
    w.add(o);
    set('correctness', o.correct ? 1 : 0, '');
    set('confidence', o.confidence, '');
    set('calibration', 1 - w.ece(), '');
    set('brierSkill', 1 - w.meanBrier() / 2, '');
    details.calibrationSamples = w.samples;
  }

  private async embeddingScores(
    text: string,
    ctx: EvaluationContext,
    contextText: string | undefined,
    set: (n: ScoreName, v: number | undefined, why: string) => void,
  ): Promise<void> {
    const targets: [ScoreName, string | undefined][] = [
      ['contextSimilarity', contextText],
      ['questionSimilarity', ctx.question],
    ];
    if (!this.o.embedding) {
      for (const [n] of targets) set(n, undefined, 'no embedding model configured');
      return;
    }
    const present = targets.filter((t): t is [ScoreName, string] => t[1] !== undefined);
    const sims = present.length
      ? await this.o.embedding.similarities(
          text,
          present.map((t) => t[1]),
        )
      : [];
    for (const [n, v] of targets)
      if (v === undefined) set(n, undefined, n === 'contextSimilarity' ? 'no context' : 'no question');
    present.forEach(([n], i) => set(n, sims[i], ''));
  }

  private window(key: string): CalibrationWindow {
    let w = this.windows.get(key);
    if (!w) {
      if (this.windows.size >= this.maxWindows) this.windows.delete(this.windows.keys().next().value!);
      w = new CalibrationWindow(this.windowSize);
      this.windows.set(key, w);
    }
    return w;
  }
}

function classifierProbabilities(r: unknown): ArrayLike<number> | undefined {
  if (typeof r !== 'object' || r === null || !('probabilities' in r)) return undefined;
  const p = (r as { probabilities: unknown }).probabilities;
  if (Array.isArray(p) || p instanceof Float32Array || p instanceof Float64Array) return p as ArrayLike<number>;
  throw new WhaleError('ERR_INVALID_ARG', 'response.probabilities: must be an array of numbers', {
    field: 'response.probabilities',
  });
}

function checkContext(c: unknown): EvaluationContext {
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c))
    throw new WhaleError('ERR_INVALID_ARG', 'context: must be an object', { field: 'context' });
  const x = c as EvaluationContext;
  for (const k of ['question', 'reference', 'window'] as const) {
    if (x[k] !== undefined && typeof x[k] !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', `context.${k}: must be a string`, { field: `context.${k}` });
  }
  if (x.window !== undefined && x.window.length > MAX_WINDOW_KEY_LENGTH) {
    throw new WhaleError('ERR_INVALID_ARG', `context.window: longer than ${MAX_WINDOW_KEY_LENGTH} characters`, {
      field: 'context.window',
    });
  }
  const ctx = x.context;
  if (
    ctx !== undefined &&
    typeof ctx !== 'string' &&
    !(Array.isArray(ctx) && ctx.every((s) => typeof s === 'string'))
  ) {
    throw new WhaleError('ERR_INVALID_ARG', 'context.context: must be a string or an array of strings', {
      field: 'context.context',
    });
  }
  if (x.label !== undefined && !Number.isInteger(x.label))
    throw new WhaleError('ERR_INVALID_ARG', 'context.label: must be an integer class index', {
      field: 'context.label',
    });
  return x;
}

function mean(scores: ResponseEvaluation['scores']): number {
  const v = Object.values(scores) as number[];
  return v.length === 0 ? 0 : v.reduce((a, b) => a + b, 0) / v.length;
}
