/**
 * The transport every service talks through. Two implementations share the
 * same semantics (and one contract test suite): KafkaBus on kafkajs and
 * LocalBus in-process, the embedded default.
 *
 * - Messages with the same key are handled in order (one partition each).
 * - Handlers run at least once: a failing handler is retried with backoff;
 *   after maxAttempts the message goes to `<topic>.dlq` with the reason, and
 *   the consumer moves on. Invalid messages go there at once.
 * - Offsets are committed only after the handler succeeded (or the message
 *   was dead-lettered), so a crash re-delivers instead of losing.
 */
import type { Envelope } from './envelope.js';

export interface MessageContext {
  topic: string;
  partition: number;
  key: string | undefined;
  /** 1 on first delivery. */
  attempt: number;
}

export type Handler = (message: Envelope, ctx: MessageContext) => unknown;

export interface SubscribeOptions {
  /** Consumer group, scoped to the topic: each group receives every message once; members share partitions. */
  group: string;
  /** Deliveries before dead-lettering (default 3). */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt (default 50 ms). */
  backoffMs?: number;
  /** Start at the oldest retained message instead of new ones (default false). */
  fromBeginning?: boolean;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface RequestOptions {
  timeoutMs: number;
  key?: string;
}

export interface Bus {
  readonly kind: 'local' | 'kafka';
  /** Unique per bus instance: replies are addressed to it. */
  readonly instanceId: string;
  publish(topic: string, message: Envelope, opts?: { key?: string }): Promise<void>;
  /** Publishes bytes as they are (bridging, tests of the dead-letter path). */
  publishRaw(topic: string, data: Buffer, opts?: { key?: string; headers?: Record<string, string> }): Promise<void>;
  subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription>;
  /** Publishes and waits for the reply correlated to it; ERR_TIMEOUT after timeoutMs. */
  request(topic: string, message: Envelope, opts: RequestOptions): Promise<Envelope>;
  /** Answers a request received through request(). */
  reply(request: Envelope, response: Omit<Envelope, 'correlationId' | 'target'>): Promise<void>;
  close(): Promise<void>;
}

export const DLQ_SUFFIX = '.dlq';
export const REPLY_TOPIC = 'whale.replies';
export const REPLY_TO_HEADER = 'reply-to';

/** Headers on a dead-lettered message. */
export const DLQ_HEADERS = { reason: 'x-dlq-reason', topic: 'x-dlq-topic', attempts: 'x-dlq-attempts' } as const;

export function dlqTopic(topic: string): string {
  return topic + DLQ_SUFFIX;
}
