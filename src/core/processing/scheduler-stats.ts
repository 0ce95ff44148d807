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
    };
  }
}
