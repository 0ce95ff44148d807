/**
 * ProcessorInterface: one asynchronous processing step (pre/post-processing,
 * a model call, a pipeline stage). BaseProcessor records the timing of every
 * call, failed ones included, so a stage's cost can be read without wrapping it.
 */
export interface ProcessorStats {
  calls: number;
  failures: number;
  totalMs: number;
  meanMs: number;
  maxMs: number;
  lastMs: number;
}

export interface ProcessorInterface<I = unknown, O = unknown> {
  readonly name: string;
  process(input: I): Promise<O>;
  stats(): ProcessorStats;
}

export abstract class BaseProcessor<I = unknown, O = unknown> implements ProcessorInterface<I, O> {
  private calls = 0;
  private failures = 0;
  private totalMs = 0;
  private maxMs = 0;
  private lastMs = 0;

  constructor(readonly name: string) {}

  /** The processing itself. */
  protected abstract run(input: I): Promise<O>;

  async process(input: I): Promise<O> {
    const started = performance.now();
    try {
      return await this.run(input);
    } catch (err) {
      this.failures++;
      throw err;
    } finally {
      const ms = performance.now() - started;
      this.calls++;
      this.totalMs += ms;
      this.lastMs = ms;
      if (ms > this.maxMs) this.maxMs = ms;
    }
  }

  stats(): ProcessorStats {
    return {
      calls: this.calls,
      failures: this.failures,
      totalMs: this.totalMs,
      meanMs: this.calls === 0 ? 0 : this.totalMs / this.calls,
      maxMs: this.maxMs,
      lastMs: this.lastMs,
    };
  }
}
