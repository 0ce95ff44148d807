// QualityEvaluator scores on hand-checked examples: reference, requirements, coherence, classifier calibration, embeddings.
import { describe, expect, it } from 'vitest';

import { OnnxModel } from '../src/models/onnx-model.js';
import { denseNetToOnnx } from '../src/models/onnx-export.js';
import { EmbeddingSimilarity, hashedBagOfTokens } from '../src/core/quality/evaluation/embedding.js';
import { QualityEvaluator, SCORE_DEFINITIONS } from '../src/core/quality/evaluation/quality-evaluator.js';
import { tokenize } from '../src/core/quality/evaluation/text.js';
import { isWhaleError } from '../src/common/errors.js';

const ev = new QualityEvaluator();

describe('reference scores', () => {
  it('exact match ignores case, punctuation, spacing and compatibility forms', async () => {
    expect((await ev.evaluateResponse('The  Cat!', { reference: 'the cat' })).scores.exactMatch).toBe(1);
    expect((await ev.evaluateResponse('ｃａｔ', { reference: 'cat' })).scores.exactMatch).toBe(1);
    expect((await ev.evaluateResponse('the cats', { reference: 'the cat' })).scores.exactMatch).toBe(0);
  });

  it('token F1 and ROUGE-L by hand', async () => {
    const a = await ev.evaluateResponse('the cat sat', { reference: 'the cat sat on the mat' });
    expect(a.scores.tokenF1).toBeCloseTo(2 / 3, 12); // P = 3/3, R = 3/6
    expect(a.scores.rougeL).toBeCloseTo(2 / 3, 12);
    const b = await ev.evaluateResponse('a b c d', { reference: 'a c d e' });
    expect(b.scores.rougeL).toBeCloseTo(0.75, 12); // LCS a c d = 3 of 4 each side
    expect(b.scores.tokenF1).toBeCloseTo(0.75, 12);
  });

  it('empty response and empty reference', async () => {
    const e = await ev.evaluateResponse('', { reference: 'something' });
    expect(e.scores).toMatchObject({ exactMatch: 0, tokenF1: 0, rougeL: 0 });
    expect(e.skipped.diversity1).toBe('empty response');
    const both = await ev.evaluateResponse('', { reference: '' });
    expect(both.scores).toMatchObject({ exactMatch: 1, tokenF1: 1, rougeL: 1 });
  });

  it('unicode: unspaced scripts tokenise per character, scripts and charsets are checked', async () => {
    expect(tokenize('日本語です abc')).toEqual(['日', '本', '語', 'で', 'す', 'abc']);
    const r = await ev.evaluateResponse('日本語', { reference: '日本' });
    expect(r.scores.tokenF1).toBeCloseTo(0.8, 12); // P 2/3, R 1
    const s = await ev.evaluateResponse('Привет hello', {}, { scripts: ['Latin'], charset: 'ascii' });
    expect(s.scores.script).toBeCloseTo(5 / 11, 12);
    expect(s.scores.charset).toBeCloseTo(5 / 11, 12);
    expect((await ev.evaluateResponse('héllo', {}, { charset: 'ascii' })).scores.charset).toBeCloseTo(4 / 5, 12);
  });

  it('very long input: ROUGE-L looks at the first maxLcsTokens tokens, F1 at all', async () => {
    const long = Array.from({ length: 200_000 }, (_, i) => `w${i % 5000}`).join(' ');
    const small = new QualityEvaluator({ maxLcsTokens: 1000 });
    const r = await small.evaluateResponse(long, { reference: long });
    expect(r.scores).toMatchObject({ exactMatch: 1, tokenF1: 1, rougeL: 1 });
    expect(r.details.tokens).toBe(200_000);
  });
});

describe('requirements', () => {
  const schema = { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } };

  it('JSON Schema validity (ajv), with the errors', async () => {
    expect((await ev.evaluateResponse('{"answer": 4}', {}, { schema })).scores.schemaValid).toBe(1);
    const bad = await ev.evaluateResponse('{"answer": "four"}', {}, { schema });
    expect(bad.scores.schemaValid).toBe(0);
    expect(bad.details.schemaErrors?.[0]).toMatch(/answer/);
    expect((await ev.evaluateResponse('not json', {}, { schema })).scores.schemaValid).toBe(0);
    expect((await ev.evaluateResponse({ answer: 1 }, {}, { schema })).scores.schemaValid).toBe(1);
  });

  it('length bounds in code points, required and forbidden terms', async () => {
    const r = await ev.evaluateResponse(
      'Paris is the capital. 🇫🇷',
      {},
      {
        minLength: 5,
        maxLength: 24,
        requiredTerms: ['Paris', 'capital city'],
        forbiddenTerms: ['London', 'the capital'],
      },
    );
    expect(r.scores.lengthWithin).toBe(1); // 24 code points
    expect(r.scores.requiredTerms).toBe(0.5);
    expect(r.scores.forbiddenTermsAbsent).toBe(0.5);
    expect((await ev.evaluateResponse('x'.repeat(25), {}, { maxLength: 24 })).scores.lengthWithin).toBe(0);
  });

  it('bad requirements and contexts are typed errors naming the field', async () => {
    const cases: [unknown, unknown, string][] = [
      [{}, { scripts: ['Klingon'] }, 'requirements.scripts'],
      [{}, { schema: { type: 'nope' } }, 'requirements.schema'],
      [{}, { minLength: 5, maxLength: 2 }, 'requirements.minLength'],
      [{}, { charset: 'ebcdic' }, 'requirements.charset'],
      [{ reference: 5 }, {}, 'context.reference'],
      [{ label: 1.5 }, {}, 'context.label'],
    ];
    for (const [ctx, req, field] of cases) {
      const err = await ev.evaluateResponse('text', ctx as never, req as never).catch((e: unknown) => e);
      expect(isWhaleError(err, 'ERR_INVALID_ARG') && err.field, JSON.stringify([ctx, req])).toBe(field);
    }
  });
});

describe('coherence and consistency without a reference', () => {
  it('diversity and repetition', async () => {
    const r = await ev.evaluateResponse('the the the the');
    expect(r.scores.diversity1).toBe(0.25);
    expect(r.scores.diversity2).toBeCloseTo(1 / 3, 12);
    expect(r.scores.nonRepetition).toBe(0.5);
    expect((await ev.evaluateResponse('one two three four')).scores.nonRepetition).toBe(1);
  });

  it('grounding and bigram support against the context', async () => {
    const r = await ev.evaluateResponse('Paris is the capital of France', {
      context: 'The capital of France is Paris.',
    });
    expect(r.scores.grounding).toBe(1);
    expect(r.scores.bigramSupport).toBeCloseTo(3 / 5, 12); // is the | the capital | capital of | of france | paris is → 3 in the context
    const half = await ev.evaluateResponse('Paris has museums', { context: ['Paris is in France'] });
    expect(half.scores.grounding).toBe(0.5); // paris yes, museums no (has is a stopword)
  });

  it('a negated restatement of the context is a contradiction', async () => {
    const r = await ev.evaluateResponse('The bridge is not open. Cars cross it daily.', {
      context: 'The bridge is open.',
    });
    expect(r.details).toMatchObject({ compared: 1, contradicted: 1 });
    expect(r.scores.consistency).toBe(0);
    expect(
      (await ev.evaluateResponse('The bridge is open.', { context: 'The bridge is open.' })).scores.consistency,
    ).toBe(1);
    const self = await ev.evaluateResponse('The shop never closes. The shop closes.');
    expect(self.scores.consistency).toBe(0);
  });
});

describe('classifier responses', () => {
  it('correctness, confidence, ECE and Brier over the window', async () => {
    const e = new QualityEvaluator({ calibrationWindow: 2 });
    const a = await e.evaluateResponse({ probabilities: [0.7, 0.2, 0.1] }, { label: 0, window: 'm' });
    expect(a.scores.correctness).toBe(1);
    expect(a.scores.confidence).toBe(0.7);
    expect(a.scores.calibration).toBeCloseTo(0.7, 12); // |1 − 0.7|
    expect(a.scores.brierSkill).toBeCloseTo(1 - 0.14 / 2, 12); // 0.3² + 0.2² + 0.1²
    const b = await e.evaluateResponse({ probabilities: [0.6, 0.4, 0] }, { label: 1, window: 'm' });
    expect(b.scores.correctness).toBe(0);
    // bins: 0.7 → bin 7 (hit), 0.6 → bin 6 (miss): ECE = (|1 − .7| + |0 − .6|)/2
    expect(b.scores.calibration).toBeCloseTo(1 - 0.45, 12);
    expect(b.scores.brierSkill).toBeCloseTo(1 - (0.14 + (0.36 + 0.36)) / 2 / 2, 12);
    const c = await e.evaluateResponse({ probabilities: [1, 0, 0] }, { label: 0, window: 'm' }); // window of 2: drops the first
    expect(c.scores.calibration).toBeCloseTo(1 - (0.6 + 0) / 2, 12);
    const err = await e.evaluateResponse({ probabilities: [0.5, 0.5] }, { label: 2 }).catch((x: unknown) => x);
    expect(isWhaleError(err, 'ERR_INVALID_ARG') && err.field).toBe('context.label');
  });

  it('every score it returns is defined and in [0, 1]', async () => {
    const r = await ev.evaluateResponse(
      'Paris is the capital of France, not Lyon.',
      { reference: 'Paris', context: 'Paris is the capital of France.' },
      { maxLength: 100, requiredTerms: ['Paris'] },
    );
    for (const [k, v] of Object.entries(r.scores)) {
      expect(SCORE_DEFINITIONS[k as keyof typeof SCORE_DEFINITIONS]).toBeTypeOf('string');
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(r.overall).toBeCloseTo(
      Object.values(r.scores).reduce((a, b) => a + b, 0) / Object.keys(r.scores).length,
      12,
    );
  });
});

describe('embedding similarity with an ONNX model', () => {
  it('runs the served model: identical texts score 1, related above unrelated', async () => {
    const width = 64;
    const units = 16;
    // A fixed random projection (seeded LCG) as the embedding model.
    let s = 12345;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const kernel = Float32Array.from({ length: width * units }, rand);
    const bytes = denseNetToOnnx([
      { kernel, bias: new Float32Array(units), inputs: width, units, activation: 'linear' },
    ]);
    const model = new OnnxModel({ name: 'embedder', bytes });
    await model.load();
    try {
      const sim = new EmbeddingSimilarity({ inputs: model.inputs, run: (x) => model.process(x) });
      const e = new QualityEvaluator({ embedding: sim });
      const same = await e.evaluateResponse('the quick brown fox', {
        context: 'the quick brown fox',
        question: 'zebra quantum violin',
      });
      expect(same.scores.contextSimilarity).toBeCloseTo(1, 5);
      expect(same.scores.questionSimilarity!).toBeLessThan(same.scores.contextSimilarity!);
      // The projection of the hashed bag is what the model computes: check one score against it by hand.
      const [a, b] = [hashedBagOfTokens('quick fox', width), hashedBagOfTokens('slow turtle', width)];
      const project = (v: Float32Array) =>
        Array.from({ length: units }, (_, j) => v.reduce((acc, x, i) => acc + x * kernel[i * units + j]!, 0));
      const [pa, pb] = [project(a), project(b)];
      const cos = pa.reduce((acc, x, i) => acc + x * pb[i]!, 0) / Math.hypot(...pa) / Math.hypot(...pb);
      const r = await e.evaluateResponse('quick fox', { context: 'slow turtle' });
      expect(r.scores.contextSimilarity).toBeCloseTo((1 + cos) / 2, 4);
    } finally {
      await model.unload();
    }
  });

  it('without a model the embedding scores are skipped, with the reason', async () => {
    const r = await ev.evaluateResponse('text', { context: 'text' });
    expect(r.skipped.contextSimilarity).toBe('no embedding model configured');
  });
});
