export {
  FeedbackAnalyzer,
  type FeedbackAnalyzerOptions,
  type FeedbackStats,
  type JoinedFeedback,
  type QualityDrop,
  type RequestRoute,
} from './feedback-analyzer.js';
export { FEEDBACK_SCHEMA, feedbackQuality, parseFeedback, type FeedbackInput } from './feedback.js';
export {
  PROPOSAL_ACTIONS,
  QualityOptimizer,
  type ModelQualityMetrics,
  type ProposalAction,
  type ProposalApplier,
  type QualityPolicy,
  type QualityProposal,
} from './quality-optimizer.js';
export { meanDropP, meanInterval, normalCdf, proportionDropP, wilson, type Interval } from './stats.js';
