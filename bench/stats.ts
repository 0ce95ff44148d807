/** Timing helpers: several runs, report the median (and min/max for spread). */
export interface Timing {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-quantile (0..1) of an ascending array, nearest rank below. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export function summarize(ms: readonly number[]): Timing {
  return { runs: ms.length, medianMs: median(ms), minMs: Math.min(...ms), maxMs: Math.max(...ms) };
}

/**
 * Collects the garbage of earlier series before timing one (the bench runs with
 * --expose-gc), so a series starts from a settled heap, as a long-running
 * process does, not behind the previous series' garbage or V8's concurrent
 * marking of freshly allocated inputs (which takes one of this machine's two
 * cores).
 */
export function settle(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Times fn `runs` times after one untimed warm-up run; `between` (untimed)
 * runs before each timed run.
 */
export async function timeRuns(
  runs: number,
  fn: () => unknown | Promise<unknown>,
  warmup = true,
  between?: () => Promise<void>,
): Promise<Timing> {
  if (warmup) await fn();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    await between?.();
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return summarize(ms);
}

/**
 * One turn of the event loop, as a service has between two aggregations:
 * native finalizers of collected results run there, and large result buffers
 * go back to the addon's pool instead of being allocated (and page-faulted)
 * anew.
 */
export function eventLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function fmt(x: number | undefined, digits = 2): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  return x >= 100 ? x.toFixed(0) : x.toFixed(digits);
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
