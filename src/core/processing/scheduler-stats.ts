/** Per-model counters of the TaskScheduler. */
export type Outcome = 'completed' | 'failed' | 'rejected' | 'expired' | 'cancelled' | 'removed' | 'shutdown';

export interface ModelSchedulerStats {
  /** Accepted and waiting in the queue. */
  queued: number;
  /** Handed to the executor and not answered yet. */
  running: number;
  runningBatches: number;
  /** Answered with the executor's result. */
  completed: number;
  /** Executor threw, returned a wrong result count, or timed out. */
  failed: number;
  /** Refused at admission (queue full: ERR_OVERLOADED). */
  rejected: number;
  /** Deadline passed before the request could run (ERR_DEADLINE_EXCEEDED). */
  expired: number;
  cancelled: number;
  /** Failed by shutdown (drain) or model removal. */
  shutdown: number;
  removed: number;
  batches: number;
  meanBatchSize: number;
  /**
   * Cumulative durations (Triton's statistics extension): per request, `queue` from scheduleTask to its
   * batch starting, `compute` the batch's run, `success`/`fail` from scheduleTask to the answer
   * (failures counted only once they reached the model's queue). Nanoseconds, from the scheduler's clock.
   */
  durations: Record<'success' | 'fail' | 'queue' | 'compute', { count: number; ns: number }>;
  /** Wall-clock milliseconds of the last completed request, 0 before any. */
  lastCompletedAt: number;
}

export class ModelCounters {
  queued = 0;
  running = 0;
  runningBatches = 0;
  private batched = 0;
  private readonly outcomes: Record<Outcome, number> = {
    completed: 0,
    failed: 0,
    rejected: 0,
    expired: 0,
    cancelled: 0,
    removed: 0,
    shutdown: 0,
  };
  private batches = 0;
  private readonly durations: ModelSchedulerStats['durations'] = {
    success: { count: 0, ns: 0 },
    fail: { count: 0, ns: 0 },
    queue: { count: 0, ns: 0 },
    compute: { count: 0, ns: 0 },
  };
  private lastCompletedAt = 0;

  /** Adds one request's duration in milliseconds to a cumulative statistic. */
  timed(kind: keyof ModelSchedulerStats['durations'], ms: number): void {
    const d = this.durations[kind];
    d.count++;
    d.ns += Math.max(0, Math.round(ms * 1e6));
    if (kind === 'success') this.lastCompletedAt = Date.now();
  }

  batchStarted(size: number): void {
    this.batches++;
    this.batched += size;
    this.running += size;
    this.runningBatches++;
  }

  count(outcome: Outcome): void {
    this.outcomes[outcome]++;
  }

  snapshot(): ModelSchedulerStats {
    return {
      queued: this.queued,
      running: this.running,
      runningBatches: this.runningBatches,
      ...this.outcomes,
      batches: this.batches,
      meanBatchSize: this.batches === 0 ? 0 : this.batched / this.batches,
      durations: {
        success: { ...this.durations.success },
        fail: { ...this.durations.fail },
        queue: { ...this.durations.queue },
        compute: { ...this.durations.compute },
      },
      lastCompletedAt: this.lastCompletedAt,
    };
  }
}
