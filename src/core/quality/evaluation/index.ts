export {
  QualityEvaluator,
  SCORE_DEFINITIONS,
  type ResponseEvaluation,
  type EvaluationContext,
  type EvaluatedResponse,
  type QualityEvaluatorOptions,
  type ScoreName,
} from './quality-evaluator.js';
export {
  EmbeddingSimilarity,
  hashedBagOfTokens,
  cosine,
  type EmbeddingModelAccess,
  type TextEncoder,
} from './embedding.js';
export { CalibrationWindow, classifierOutcome, type ClassifierOutcome } from './calibration.js';
export { CHARSETS, type Charset, type Requirements } from './requirement-scores.js';
export { STOPWORDS, NEGATIONS, CONTRADICTION_MIN_JACCARD } from './coherence-scores.js';
export { tokenize, sentences } from './text.js';
