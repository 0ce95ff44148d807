/** Pending requests of one bus instance, matched to replies by correlation id. */
import { WhaleError } from '../common/errors.js';
import { REPLY_TO_HEADER, REPLY_TOPIC } from './bus.js';
import type { Envelope } from './envelope.js';

export const REPLY_INSTANCE_HEADER = 'reply-instance';

interface Pending {
  resolve: (e: Envelope) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class ReplyRouter {
  private readonly pending = new Map<string, Pending>();

  constructor(readonly instanceId: string) {}

  /** Marks a request so its reply comes back to this instance. */
  address(request: Envelope): Envelope {
    return {
      ...request,
      headers: { ...request.headers, [REPLY_TO_HEADER]: REPLY_TOPIC, [REPLY_INSTANCE_HEADER]: this.instanceId },
    };
  }

  wait(request: Envelope, topic: string, timeoutMs: number): Promise<Envelope> {
    try {
      assertTimeout(timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(request.id);
        reject(
          new WhaleError('ERR_TIMEOUT', `no reply to ${request.type} on ${topic} within ${timeoutMs} ms`, {
            retriable: true,
            requestId: request.id,
          }),
        );
      }, timeoutMs);
      this.pending.set(request.id, { resolve, reject, timer });
    });
  }

  /** Settles the request a reply answers; false when it is not ours or already timed out. */
  settle(reply: Envelope): boolean {
    if (reply.target !== this.instanceId || reply.correlationId === undefined) return false;
    const p = this.pending.get(reply.correlationId);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(reply.correlationId);
    p.resolve(reply);
    return true;
  }

  forget(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
  }

  failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

/** Longest timer Node can arm: a longer (or infinite) one fires at once instead. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function assertTimeout(timeoutMs: unknown): asserts timeoutMs is number {
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options.timeoutMs: must be a number in (0, ${MAX_TIMEOUT_MS}] ms, got ${String(timeoutMs)}`,
      {
        field: 'options.timeoutMs',
      },
    );
  }
}

/** The envelope that answers `request`, addressed back to its sender. */
export function replyTo(
  request: Envelope,
  response: Omit<Envelope, 'correlationId' | 'target'>,
): { topic: string; envelope: Envelope } {
  const topic = request.headers[REPLY_TO_HEADER];
  const instance = request.headers[REPLY_INSTANCE_HEADER];
  if (!topic || !instance) {
    throw new WhaleError(
      'ERR_INVALID_MESSAGE',
      `request ${request.id} (${request.type}) has no reply address; it was not sent with request()`,
      {
        field: 'request.headers',
      },
    );
  }
  return { topic, envelope: { ...response, correlationId: request.id, target: instance } };
}
