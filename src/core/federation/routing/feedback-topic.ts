/**
 * Feedback over the bus: QualityFeedback messages on whale.quality.feedback
 * (declared in src/transport/asyncapi.json). Feedback that does not validate
 * or names an unknown request is dead-lettered at once with the reason
 * (ERR_INVALID_MESSAGE is never retried); nothing is dropped silently.
 */
import { isWhaleError, WhaleError } from '../../../common/errors.js';
import type { FeedbackAnalyzer } from '../../quality/optimization/feedback-analyzer.js';
import { parseFeedback, type FeedbackInput } from '../../quality/optimization/feedback.js';
import type { Bus, Subscription } from '../../../transport/bus.js';
import { createEnvelope } from '../../../transport/envelope.js';

export const FEEDBACK_TOPIC = 'whale.quality.feedback';
export const FEEDBACK_MESSAGE = 'QualityFeedback';
export const FEEDBACK_GROUP = 'whale-quality';

export function subscribeFeedback(bus: Bus, analyzer: FeedbackAnalyzer, group = FEEDBACK_GROUP): Promise<Subscription> {
  return bus.subscribe(
    FEEDBACK_TOPIC,
    (e) => {
      if (e.type !== FEEDBACK_MESSAGE)
        throw new WhaleError(
          'ERR_INVALID_MESSAGE',
          `expected a ${FEEDBACK_MESSAGE} on ${FEEDBACK_TOPIC}, got ${e.type}`,
        );
      try {
        analyzer.submitFeedback(e.payload);
      } catch (err) {
        if (
          isWhaleError(err, 'ERR_INVALID_ARG') ||
          isWhaleError(err, 'ERR_NOT_FOUND') ||
          isWhaleError(err, 'ERR_MODEL_NOT_FOUND')
        ) {
          throw new WhaleError('ERR_INVALID_MESSAGE', `${FEEDBACK_MESSAGE}: ${err.message}`, {
            field: err.field,
            cause: err,
          });
        }
        throw err;
      }
    },
    { group },
  );
}

/** Validates and publishes one feedback (keyed by its request id). */
export async function publishFeedback(bus: Bus, source: string, feedback: FeedbackInput): Promise<void> {
  const payload = parseFeedback(feedback);
  await bus.publish(FEEDBACK_TOPIC, createEnvelope({ type: FEEDBACK_MESSAGE, source, payload }), {
    key: payload.requestId,
  });
}
