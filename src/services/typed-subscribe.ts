import { WhaleError } from '../common/errors.js';
import type { Bus, MessageContext, Subscription } from '../transport/bus.js';
import type { Envelope } from '../transport/envelope.js';
import { payloadProblem, TOPICS, type ChannelId } from '../transport/topics.js';

/**
 * Subscribes to a channel and hands over only payloads that match the
 * message's schema in the AsyncAPI document; anything else is dead-lettered
 * with the reason (ERR_INVALID_MESSAGE is never retried).
 */
export function subscribeTyped<P>(
  bus: Bus,
  channel: ChannelId,
  message: string,
  group: string,
  handler: (payload: P, envelope: Envelope, ctx: MessageContext) => unknown,
): Promise<Subscription> {
  return subscribeMessages(bus, TOPICS[channel], message, group, handler);
}

/** The same on a topic the document does not name (e.g. a hosted model's own topic, modelTopic). */
export function subscribeMessages<P>(
  bus: Bus,
  topic: string,
  message: string,
  group: string,
  handler: (payload: P, envelope: Envelope, ctx: MessageContext) => unknown,
): Promise<Subscription> {
  return bus.subscribe(
    topic,
    async (e, ctx) => {
      if (e.type !== message)
        throw new WhaleError('ERR_INVALID_MESSAGE', `expected a ${message} on ${topic}, got ${e.type}`);
      const problem = payloadProblem(message, e.payload);
      if (problem) throw new WhaleError('ERR_INVALID_MESSAGE', `${message}: ${problem}`);
      await handler(e.payload as P, e, ctx);
    },
    { group },
  );
}
