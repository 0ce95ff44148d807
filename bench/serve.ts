/**
 * Serving bench: a table of cases, each run for several variants; add a case
 * to CASES to extend it. Scheduler cases measure decisions/s (a request
 * dispatched in a batch = one decision) through the native binding, batched,
 * against the plain-TS reference engine, and the TaskScheduler's own
 * per-request overhead with an executor that does no work.
 */
import { TaskScheduler } from '../src/core/processing/task-scheduler.js';
import {
  createSchedulerEngine,
  OP_BATCH,
  RECORD_WORDS,
  type EngineKind,
} from '../src/core/processing/scheduler-engine.js';
import { fmt, median, table } from './stats.js';

export interface ServeOptions {
  runs: number;
  quick: boolean;
}

export interface ServeResult {
  rate: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
}

export interface ServeCase {
  name: string;
  variants: string[];
  run(variant: string, opts: ServeOptions): Promise<ServeResult>;
  note: string;
}

/** Engine level: submit records in chunks, poll decisions into one buffer, complete each batch. */
async function engineDecisions(kind: EngineKind, opts: ServeOptions): Promise<ServeResult> {
  const chunk = 1024;
  const total = chunk * (opts.quick ? 200 : 2000);
  const e = createSchedulerEngine(kind, 3);
  [1, 2, 4, 8].forEach((w, t) => e.setTenant(t, w));
  e.addModel(0, {
    maxBatchSize: 32,
    preferredBatchSizes: [8, 16, 32],
    maxQueueDelayUs: 0,
    maxQueueSize: 1 << 20,
    instances: 1 << 16,
  });
  const records = new Float64Array(chunk * RECORD_WORDS);
  const status = new Uint8Array(chunk);
  const out = new Uint32Array(1 << 16);
  const meta = new Float64Array(2);
  let x = 12345;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  const t0 = performance.now();
  let decided = 0;
  for (let base = 0; base < total; base += chunk) {
    const now = base; // µs: one request per µs of simulated time
    for (let i = 0, r = 0; i < chunk; i++, r += RECORD_WORDS) {
      records[r] = i;
      records[r + 1] = 0;
      records[r + 2] = i & 3;
      records[r + 3] = Math.floor(rand() * 3);
      records[r + 4] = now;
      records[r + 5] = rand() < 0.3 ? now + 1_000_000 : Infinity;
    }
    e.submit(records, chunk, status);
    do {
      const words = e.poll(now, out, meta);
      for (let i = 0; i < words;) {
        if (out[i] === OP_BATCH) {
          decided += out[i + 2]!;
          e.complete(0);
          i += 3 + out[i + 2]!;
        } else i += 2;
      }
    } while (meta[1] === 1);
  }
  const s = (performance.now() - t0) / 1e3;
  if (decided !== total) throw new Error(`bench: ${decided} decisions for ${total} requests`);
  return { rate: total / s, unit: 'decisions/s' };
}

/** Whole TaskScheduler: promises, buffering, executor calls; the executor returns its inputs. */
async function schedulerRequests(kind: EngineKind, opts: ServeOptions): Promise<ServeResult> {
  const total = opts.quick ? 50_000 : 300_000;
  const inFlight = 1024;
  const s = new TaskScheduler({
    engine: kind,
    tenants: { a: 1, b: 3 },
    models: {
      m: { maxBatchSize: 32, preferredBatchSizes: [32], maxQueueDelayUs: 100, maxQueueSize: 1 << 20, instances: 4 },
    },
    executor: async (_m, inputs) => inputs,
  });
  const lat: number[] = [];
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const start = performance.now();
      await s.scheduleTask({ model: 'm', input: i, tenant: i & 1 ? 'a' : 'b', priority: i % 3 });
      lat.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const sec = (performance.now() - t0) / 1e3;
  await s.drain(0);
  lat.sort((a, b) => a - b);
  return {
    rate: total / sec,
    unit: 'requests/s',
    p50Ms: lat[Math.floor(lat.length / 2)],
    p99Ms: lat[Math.floor(lat.length * 0.99)],
  };
}

export const CASES: ServeCase[] = [
  {
    name: 'scheduler engine',
    variants: ['native', 'reference'],
    run: (v, o) => engineDecisions(v as EngineKind, o),
    note: 'engine: 1 model, max batch 32 (preferred 8/16/32), 4 tenants (weights 1:2:4:8), 3 classes, 30% with deadlines; records submitted 1024 per call, decisions polled into one Uint32Array, one complete() per batch.',
  },
  {
    name: 'TaskScheduler, no-op executor',
    variants: ['native', 'reference'],
    run: (v, o) => schedulerRequests(v as EngineKind, o),
    note: 'TaskScheduler: 1024 requests in flight, max batch 32, 4 instances, executor returns its inputs; latency = scheduleTask() to answer.',
  },
];

export async function benchServe(opts: ServeOptions): Promise<{ text: string; cases: unknown[] }> {
  const rows: string[][] = [];
  const cases: unknown[] = [];
  for (const c of CASES) {
    for (const v of c.variants) {
      await c.run(v, { ...opts, quick: true }); // warm-up
      const rs: ServeResult[] = [];
      for (let r = 0; r < opts.runs; r++) rs.push(await c.run(v, opts));
      const pick = (f: (x: ServeResult) => number | undefined) => {
        const xs = rs.map(f).filter((x): x is number => x !== undefined);
        return xs.length ? median(xs) : undefined;
      };
      const rate = pick((x) => x.rate)!;
      rows.push([
        c.name,
        v,
        fmt(rate, 0),
        rs[0]!.unit,
        fmt(
          pick((x) => x.p50Ms),
          3,
        ),
        fmt(
          pick((x) => x.p99Ms),
          3,
        ),
      ]);
      cases.push({
        case: c.name,
        variant: v,
        unit: rs[0]!.unit,
        rate,
        p50Ms: pick((x) => x.p50Ms),
        p99Ms: pick((x) => x.p99Ms),
      });
    }
  }
  return {
    text: [
      table(['case', 'variant', 'rate', 'unit', 'p50 ms', 'p99 ms'], rows),
      '',
      `Medians over ${opts.runs} runs.`,
      ...CASES.map((c) => c.note),
    ].join('\n'),
    cases,
  };
}
