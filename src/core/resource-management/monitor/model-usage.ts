/**
 * What each model's work used: batches and rows run, wall time in its worker
 * slots and the process CPU time during those batches. CPU time is the
 * process's (ONNX Runtime and native kernels run on their own threads), split
 * evenly among the batches that overlapped, so it is exact when batches run
 * one at a time and an estimate when they overlap.
 */
export interface ModelUsageFigures {
  batches: number;
  rows: number;
  failures: number;
  wallMs: number;
  cpuMs: number;
  /** Wall time of the last batch. */
  lastBatchMs: number;
}

interface Open {
  model: string;
  startWall: number;
  cpuShareMs: number;
}

export class ModelUsage {
  private readonly models = new Map<string, ModelUsageFigures>();
  private readonly open = new Set<Open>();
  private lastCpu = cpuMs();

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Marks a batch as started; call the returned function when it settles. */
  begin(model: string, rows: number): (ok: boolean) => void {
    this.accrue();
    const o: Open = { model, startWall: this.clock(), cpuShareMs: 0 };
    this.open.add(o);
    return (ok) => {
      this.accrue();
      this.open.delete(o);
      const f = this.figures(model);
      const wall = this.clock() - o.startWall;
      f.batches++;
      f.rows += rows;
      if (!ok) f.failures++;
      f.wallMs += wall;
      f.cpuMs += o.cpuShareMs;
      f.lastBatchMs = wall;
    };
  }

  get(model: string): ModelUsageFigures | undefined {
    const f = this.models.get(model);
    return f && { ...f };
  }

  all(): Record<string, ModelUsageFigures> {
    return Object.fromEntries([...this.models].map(([m, f]) => [m, { ...f }]));
  }

  /** Shares the process CPU time since the last event among the open batches. */
  private accrue(): void {
    const now = cpuMs();
    const delta = now - this.lastCpu;
    this.lastCpu = now;
    if (this.open.size === 0) return;
    const each = delta / this.open.size;
    for (const o of this.open) o.cpuShareMs += each;
  }

  private figures(model: string): ModelUsageFigures {
    let f = this.models.get(model);
    if (!f) {
      f = { batches: 0, rows: 0, failures: 0, wallMs: 0, cpuMs: 0, lastBatchMs: 0 };
      this.models.set(model, f);
    }
    return f;
  }
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
