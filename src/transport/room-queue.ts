/**
 * Publishes of LocalBus waiting for retention room (as a Kafka producer blocks
 * up to max.block.ms when its buffer is full). They are served in arrival
 * order, and a new publish queues behind any that wait, so order per key holds.
 */
export interface RoomWait {
  /** Stores the record if there is room (making room first) and reports whether it did. */
  tryRoom: () => boolean;
  maxBlockMs: number;
  /** The error to fail with once maxBlockMs passed, or the bus closed (then `closedError`). */
  timeoutError: () => Error;
  closedError: () => Error | undefined;
}

/** Re-check at least this often: records also become droppable by age, which nothing announces. */
const POLL_MS = 50;

export class RoomQueue {
  private readonly queue: object[] = [];
  private wakers: Array<() => void> = [];

  get waiting(): number {
    return this.queue.length;
  }

  async wait(w: RoomWait): Promise<void> {
    const ticket = {};
    this.queue.push(ticket);
    const deadline = Date.now() + w.maxBlockMs;
    try {
      for (;;) {
        const closed = w.closedError();
        if (closed) throw closed;
        if (this.queue[0] === ticket && w.tryRoom()) return;
        const left = deadline - Date.now();
        if (left <= 0) throw w.timeoutError();
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, POLL_MS));
          this.wakers.push(done);
        });
      }
    } finally {
      this.queue.splice(this.queue.indexOf(ticket), 1);
      this.wake(); // the next in line may fit now
    }
  }

  /** Something may have freed room (a commit, a closed subscription, the bus closing). */
  wake(): void {
    if (this.wakers.length === 0) return;
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }
}
