/** A token bucket: `rate` tokens per second up to `burst`; take() says whether and when to retry. */
export interface TakeResult {
  ok: boolean;
  /** Milliseconds until enough tokens are back (0 when ok). */
  retryAfterMs: number;
}

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private rate: number,
    private burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.at = nowMs;
  }

  /** Changes the limits at run time; tokens above the new burst are dropped. */
  reconfigure(rate: number, burst: number, nowMs: number): void {
    this.refill(nowMs);
    this.rate = rate;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  take(nowMs: number, n = 1): TakeResult {
    this.refill(nowMs);
    if (this.tokens >= n) {
      this.tokens -= n;
      return { ok: true, retryAfterMs: 0 };
    }
    return { ok: false, retryAfterMs: Math.ceil(((n - this.tokens) * 1000) / this.rate) };
  }

  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  private refill(nowMs: number): void {
    // A clock that steps back (e.g. another node's) never removes tokens.
    const elapsed = Math.max(0, nowMs - this.at);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
    this.at = Math.max(this.at, nowMs);
  }
}
