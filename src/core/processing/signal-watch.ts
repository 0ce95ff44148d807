/**
 * Cancellation for many pending items that share abort signals, with one 'abort' listener per
 * signal. A server passes one signal per connection; a listener added and removed per request kept
 * each request's objects reachable from that long-lived signal past young-generation GCs (issue 25).
 * A signal whose items are all done loses its listener at the next sweep (every SWEEP_DONE items,
 * or sooner when many such signals wait), so a per-request signal (AbortSignal.timeout or
 * AbortSignal.any, which Node holds while it has a listener) is not kept, and a connection's signal
 * adds its listener again at most once per sweep.
 */

const SWEEP_DONE = 1024;
const SWEEP_SIGNALS = 256;

interface Watch<T> {
  items: Set<T>;
  onAbort: () => void;
}

export class SignalWatch<T> {
  private readonly watched = new WeakMap<AbortSignal, Watch<T>>();
  private readonly idle = new Set<AbortSignal>();
  private doneSinceSweep = 0;

  /** @param onAbort called for each item still watched when its signal aborts. */
  constructor(private readonly onAbort: (item: T) => void) {}

  /** Watches `item` until done(); `signal` must not have aborted yet (check before). */
  add(signal: AbortSignal, item: T): void {
    let w = this.watched.get(signal);
    if (!w) {
      const items = new Set<T>();
      const onAbort = () => {
        this.watched.delete(signal);
        for (const item of [...items]) this.onAbort(item);
      };
      w = { items, onAbort };
      this.watched.set(signal, w);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    w.items.add(item);
  }

  /** The item needs no cancellation any more; an emptied signal's listener goes at the next sweep. */
  done(signal: AbortSignal, item: T): void {
    const w = this.watched.get(signal);
    if (w) {
      w.items.delete(item);
      if (w.items.size === 0) this.idle.add(signal);
    }
    if (++this.doneSinceSweep >= SWEEP_DONE || this.idle.size >= SWEEP_SIGNALS) this.sweep();
  }

  /** Removes the listener of every signal whose items are all done. */
  sweep(): void {
    for (const signal of this.idle) {
      const w = this.watched.get(signal);
      if (w && w.items.size === 0) {
        signal.removeEventListener('abort', w.onAbort);
        this.watched.delete(signal);
      }
    }
    this.idle.clear();
    this.doneSinceSweep = 0;
  }
}
