/**
 * One partition of LocalBus: an append-only log addressed by offset, trimmed
 * from the oldest end. Records live in an array read from a moving head;
 * the consumed prefix is cut off only once it is at least half the array,
 * so append and trim are O(1) amortised however many records are retained
 * (Array.prototype.shift on a 100k-element array copies it every time).
 */
export interface LogRecord {
  data: Buffer;
  key: string | undefined;
  headers: Record<string, string>;
  /** What the record counts against the bus's byte budget. */
  bytes: number;
  /** Date.now() at publish. */
  at: number;
}

const COMPACT_MIN = 1024;

export class PartitionLog {
  private items: Array<LogRecord | undefined> = [];
  private head = 0;
  /** Offset of the oldest retained record (== end when empty). */
  base = 0;

  /** Offset the next record will get. */
  get end(): number {
    return this.base + this.size;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  append(r: LogRecord): number {
    this.items.push(r);
    return this.end - 1;
  }

  /** The record at `offset`, or undefined when it is not (or no longer) retained. */
  at(offset: number): LogRecord | undefined {
    const i = offset - this.base;
    return i >= 0 && i < this.size ? this.items[this.head + i] : undefined;
  }

  oldest(): LogRecord | undefined {
    return this.size > 0 ? this.items[this.head] : undefined;
  }

  /** Removes and returns the oldest record. */
  dropOldest(): LogRecord | undefined {
    if (this.size === 0) return undefined;
    const r = this.items[this.head];
    this.items[this.head++] = undefined; // let it be collected now
    this.base++;
    if (this.head >= COMPACT_MIN && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return r;
  }

  records(): LogRecord[] {
    return this.items.slice(this.head) as LogRecord[];
  }
}
