/** Delivery shared by both buses: decode, validate, retry with backoff, dead-letter. */
import { WhaleError } from '../common/errors.js';
import { REQUEST_ID_HEADER, SAFE_REQUEST_ID, withLogContext } from '../common/logger.js';
import {
  extractTraceContext,
  ROOT_TRACE_CONTEXT,
  SpanKind,
  tracingActive,
  trace,
  withSpan,
  context,
} from '../common/trace.js';
import type { Handler, MessageContext, SubscribeOptions } from './bus.js';
import { decodeEnvelope, type Envelope } from './envelope.js';

export interface DeliveryPolicy {
  maxAttempts: number;
  backoffMs: number;
}

export function deliveryPolicy(o: SubscribeOptions): DeliveryPolicy {
  if (typeof o !== 'object' || o === null)
    throw new WhaleError('ERR_INVALID_OPTION', 'options: { group } is required', { field: 'options' });
  const maxAttempts = o.maxAttempts ?? 3;
  const backoffMs = o.backoffMs ?? 50;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new WhaleError('ERR_INVALID_OPTION', `options.maxAttempts: must be an integer >= 1, got ${maxAttempts}`, {
      field: 'options.maxAttempts',
    });
  }
  if (typeof backoffMs !== 'number' || !(backoffMs >= 0 && backoffMs <= MAX_DELAY_MS)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options.backoffMs: must be a number in [0, ${MAX_DELAY_MS}], got ${String(backoffMs)}`,
      { field: 'options.backoffMs' },
    );
  }
  if (typeof o.group !== 'string' || o.group.length === 0) {
    throw new WhaleError('ERR_INVALID_OPTION', 'options.group: a consumer group name is required', {
      field: 'options.group',
    });
  }
  return { maxAttempts, backoffMs };
}

export function assertHandler(handler: unknown): asserts handler is Handler {
  if (typeof handler !== 'function')
    throw new WhaleError('ERR_INVALID_ARG', 'handler: must be a function', { field: 'handler' });
}

/** Thrown when the bus closes mid-delivery: the message is neither committed nor dead-lettered. */
export class DeliveryAborted extends Error {}

export type DeadLetter = (reason: string, attempts: number) => Promise<void>;

/**
 * Resolves once the message is handled or dead-lettered (either way its
 * offset may be committed); rejects with DeliveryAborted when the bus closed.
 */
export async function deliver(
  data: Buffer | null,
  meta: Omit<MessageContext, 'attempt'>,
  handler: Handler,
  policy: DeliveryPolicy,
  deadLetter: DeadLetter,
  isClosed: () => boolean,
): Promise<Envelope | undefined> {
  const decoded = decodeEnvelope(data);
  if (!decoded.ok) {
    await deadLetter(`invalid message: ${decoded.reason}`, 0);
    return undefined;
  }
  let last: unknown;
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    if (isClosed()) throw new DeliveryAborted();
    try {
      const ctx = { ...meta, attempt };
      const run = () => (tracingActive() ? traced(decoded.envelope, ctx, handler) : handler(decoded.envelope, ctx));
      // A message published while a request was handled: its consumer logs under the request's id.
      const requestId = decoded.envelope.headers[REQUEST_ID_HEADER];
      await (requestId !== undefined && SAFE_REQUEST_ID.test(requestId) ? withLogContext({ requestId }, run) : run());
      return decoded.envelope;
    } catch (err) {
      last = err;
      // A message the handler found invalid will not get better by retrying.
      if (err instanceof WhaleError && err.code === 'ERR_INVALID_MESSAGE') {
        await deadLetter(`invalid message: ${err.message}`, attempt);
        return decoded.envelope;
      }
      if (attempt < policy.maxAttempts) await sleep(policy.backoffMs * 2 ** (attempt - 1));
    }
  }
  const why = last instanceof Error ? last.message : String(last);
  await deadLetter(`handler failed ${policy.maxAttempts} time(s): ${why}`, policy.maxAttempts);
  return decoded.envelope;
}

/**
 * Runs the handler in the trace the message's headers carry (a consumer span, child of the
 * publisher's span), or outside any trace when they carry none: an in-process bus delivers inside
 * the publisher's async context, which must not become the consumer's.
 */
async function traced(message: Envelope, ctx: MessageContext, handler: Handler): Promise<void> {
  const parent = extractTraceContext(message.headers);
  if (!trace.getSpan(parent)) {
    await context.with(ROOT_TRACE_CONTEXT, () => handler(message, ctx));
    return;
  }
  const attributes = {
    'messaging.system': 'whale',
    'messaging.destination.name': ctx.topic,
    'messaging.operation.type': 'process',
    'messaging.message.id': message.id,
    'messaging.destination.partition.id': String(ctx.partition),
    'whale.message.type': message.type,
    'whale.message.source': message.source,
    'whale.delivery.attempt': ctx.attempt,
  };
  await withSpan(`${ctx.topic} process`, { kind: SpanKind.CONSUMER, parent, attributes }, () => handler(message, ctx));
}

/** Node fires longer timers at once; backoff doubling must not wrap around to no delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(ms, MAX_DELAY_MS)));
}
