/**
 * Delivers alert events to one sink (bus, history, webhook) in order, retrying
 * a failing delivery with exponential backoff. Nothing is dropped silently: an
 * event that exhausts its attempts is logged and counted in `failed`.
 */
import type { Logger } from '../../../common/logger.js';

export interface DeliveryOptions<T> {
  name: string;
  send: (item: T) => Promise<void>;
  logger: Logger;
  maxAttempts?: number;
  backoffMs?: number;
  /** Longest wait between two attempts (default: none, the backoff keeps doubling). */
  maxBackoffMs?: number;
  /** Queue bound: beyond it the oldest undelivered event is given up (counted in failed). */
  maxQueued?: number;
}

export class AlertDelivery<T> {
  delivered = 0;
  failed = 0;
  private readonly queue: T[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(private readonly o: DeliveryOptions<T>) {}

  get name(): string {
    return this.o.name;
  }

  push(item: T): void {
    if (this.closed) return;
    if (this.queue.length >= (this.o.maxQueued ?? 10_000)) {
      this.queue.shift();
      this.failed++;
      this.o.logger.error('alert delivery queue full: oldest event given up', { sink: this.o.name });
    }
    this.queue.push(item);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves once every queued event was delivered or given up. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops retrying (pending backoffs end at once); what is still queued gets one more attempt. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.flush();
  }

  pending(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    const max = this.o.maxAttempts ?? 6;
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.o.send(item);
          this.delivered++;
          break;
        } catch (err) {
          if (attempt >= max || this.closed) {
            this.failed++;
            this.o.logger.error('alert delivery failed', {
              sink: this.o.name,
              attempts: attempt,
              error: (err as Error)?.message,
            });
            break;
          }
          await new Promise<void>((r) => {
            const t = setTimeout(
              r,
              Math.min(this.o.maxBackoffMs ?? 2 ** 31 - 1, (this.o.backoffMs ?? 200) * 2 ** (attempt - 1)),
            );
            t.unref();
            this.wake = () => {
              clearTimeout(t);
              r();
            };
          });
        }
      }
      this.queue.shift();
    }
  }
}
