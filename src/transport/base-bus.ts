/** What both buses share: envelope encoding, request/reply over whale.replies, the closed state. */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../common/errors.js';
import { logContextFields, REQUEST_ID_HEADER } from '../common/logger.js';
import { injectTraceHeaders, inTrace, SpanKind, withSpan } from '../common/trace.js';
import {
  REPLY_TOPIC,
  type Bus,
  type Handler,
  type RequestOptions,
  type SubscribeOptions,
  type Subscription,
} from './bus.js';
import type { Envelope } from './envelope.js';
import { assertPublishable, assertTopic, encodeForPublish } from './outgoing.js';
import { assertTimeout, replyTo, ReplyRouter } from './reply-router.js';

export abstract class BaseBus implements Bus {
  abstract readonly kind: 'local' | 'kafka';
  readonly instanceId: string;
  protected readonly replies: ReplyRouter;
  protected closed = false;
  private replySub: Promise<Subscription> | undefined;

  protected constructor(prefix: string) {
    this.instanceId = `${prefix}-${randomUUID()}`;
    this.replies = new ReplyRouter(this.instanceId);
  }

  abstract publishRaw(
    topic: string,
    data: Buffer,
    opts?: { key?: string; headers?: Record<string, string> },
  ): Promise<void>;
  abstract subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription>;
  abstract close(): Promise<void>;

  /** Fails with ERR_INVALID_MESSAGE (field named) when the consumers would have to dead-letter the message. */
  async publish(topic: string, message: Envelope, opts: { key?: string } = {}): Promise<void> {
    this.assertOpen();
    assertTopic(topic);
    message = withRequestId(message);
    // Outside a trace (metrics, heartbeats, events on timers) a message gets no span: no trace of its own.
    if (!inTrace()) return this.publishRaw(topic, encodeForPublish(topic, message), opts);
    // In a trace: a producer span, whose W3C context (traceparent) travels in the envelope's headers.
    const attributes = {
      'messaging.system': this.kind === 'kafka' ? 'kafka' : 'whale.local',
      'messaging.destination.name': topic,
      'messaging.operation.type': 'send',
      'whale.message.type': String(message?.type),
    };
    await withSpan(`${topic} publish`, { kind: SpanKind.PRODUCER, attributes }, () =>
      this.publishRaw(topic, encodeForPublish(topic, withTraceHeaders(message)), opts),
    );
  }

  async request(topic: string, message: Envelope, opts: RequestOptions): Promise<Envelope> {
    this.assertOpen();
    assertTopic(topic);
    if (typeof opts !== 'object' || opts === null)
      throw new WhaleError('ERR_INVALID_OPTION', 'options: { timeoutMs } is required', { field: 'options' });
    assertTimeout(opts.timeoutMs);
    assertPublishable(topic, message); // before subscribing for replies: a bad request never leaves nor waits
    if (!this.replySub) {
      const sub = this.subscribe(REPLY_TOPIC, (e) => void this.replies.settle(e), {
        group: `replies-${this.instanceId}`,
      });
      this.replySub = sub;
      sub.catch(() => {
        if (this.replySub === sub) this.replySub = undefined; // the next request tries again
      });
    }
    await this.replySub;
    const addressed = this.replies.address(message);
    const reply = this.replies.wait(addressed, topic, opts.timeoutMs);
    try {
      await this.publish(topic, addressed, opts.key === undefined ? {} : { key: opts.key });
    } catch (err) {
      this.replies.forget(addressed.id);
      throw err;
    }
    return reply;
  }

  async reply(request: Envelope, response: Omit<Envelope, 'correlationId' | 'target'>): Promise<void> {
    const { topic, envelope } = replyTo(request, response);
    await this.publish(topic, envelope);
  }

  /** Marks the bus closed and fails every request still waiting; false when it was closed already. */
  protected markClosed(): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.replies.failAll(new WhaleError('ERR_BUS_CLOSED', 'the bus was closed before the reply arrived'));
    return true;
  }

  protected assertOpen(): void {
    if (this.closed) throw new WhaleError('ERR_BUS_CLOSED', 'the bus is closed');
  }
}

/** The message with the id of the request being handled (x-request-id) in its headers, when there is one and it has none. */
function withRequestId(message: Envelope): Envelope {
  const id = logContextFields().requestId;
  if (typeof id !== 'string') return message;
  const h = (message as { headers?: unknown } | null)?.headers;
  if (typeof h !== 'object' || h === null || Array.isArray(h) || REQUEST_ID_HEADER in h) return message;
  return { ...message, headers: { ...(h as Record<string, string>), [REQUEST_ID_HEADER]: id } };
}

/** The message with the active trace context in its headers (left as it is when its headers are not an object: validation names them). */
function withTraceHeaders(message: Envelope): Envelope {
  const h = (message as { headers?: unknown } | null)?.headers;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return message;
  const headers = injectTraceHeaders(h as Record<string, string>);
  return headers === h ? message : { ...message, headers };
}
