/** A binary min-heap with a caller-given order (`before(a, b)`: a comes out first). */
export class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  top(): T | undefined {
    return this.items[0];
  }

  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(x, a[p]!)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }

  pop(): T | undefined {
    const a = this.items;
    const first = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) this.siftDown(last);
    return first;
  }

  clear(): void {
    this.items = [];
  }

  /** Drops dead items from the top; false when nothing alive is left. */
  prune(alive: (x: T) => boolean): boolean {
    while (this.items.length > 0 && !alive(this.items[0]!)) this.pop();
    return this.items.length > 0;
  }

  /** Rebuilds without dead items once they outnumber the live ones. */
  compact(live: number, alive: (x: T) => boolean): void {
    if (this.items.length <= 2 * live + 64) return;
    const kept = this.items.filter(alive);
    this.items = [];
    for (const x of kept) this.push(x);
  }

  private siftDown(x: T): void {
    const a = this.items;
    const n = a.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(a[r]!, a[l]!) ? r : l;
      if (!this.before(a[c]!, x)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = x;
  }
}
