/**
 * Where the in-process p99 at concurrency 64 comes from (`npm run bench -- serve`'s `delay` and `idle`
 * rows): the serving path (pipeline → TaskScheduler → ModelHost → OnnxModel, shipped MNIST model) in a
 * closed loop of 64 callers, with every request's start and end, every batch's dispatch and
 * completion, and every GC pause (perf_hooks 'gc' entries) recorded. Each request's latency is split
 * into the time its batch waited to be dispatched (queue), the batch's execution, and the rest (the
 * caller's turn after the answer: promise chains and the event loop); a request in the slowest 1 % is
 * charged to GC when a pause overlaps it.
 *
 *   node --expose-gc dist/bench/http-serve-tail.js [delay|idle] [requests]
 */
import { join } from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';

import { silentLogger } from '../src/common/logger.js';
import type { NamedTensors } from '../src/core/base/tensor.js';
import { ModelHost } from '../src/core/processing/model-host.js';
import { ProcessingOptimizer } from '../src/core/processing/processing-optimizer.js';
import { ProcessingPipeline } from '../src/core/processing/processing-pipeline.js';
import { TaskScheduler } from '../src/core/processing/task-scheduler.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { OnnxModel } from '../src/models/onnx-model.js';
import { packageRoot } from '../src/native/loader.js';
import { fmt, percentile } from './stats.js';

const PIXELS = 784;
const CONC = 64;

interface Batch {
  dispatched: number;
  done: number;
  inputs: unknown[];
}

export async function serveTail(variant: 'delay' | 'idle', total: number): Promise<string> {
  const host = new ModelHost({ logger: silentLogger });
  await host.add(new OnnxModel({ name: 'mnist', path: join(packageRoot(), 'models', 'mnist', 'model.onnx') }));
  const batches: Batch[] = [];
  const batchOf = new Map<unknown, Batch>();
  const scheduler = new TaskScheduler({
    executor: async (model, inputs) => {
      const b: Batch = { dispatched: performance.now(), done: 0, inputs };
      for (const i of inputs) batchOf.set(i, b);
      const out = await host.runBatch(model, inputs as NamedTensors[]);
      b.done = performance.now();
      batches.push(b);
      return out;
    },
    models: {
      mnist: { maxBatchSize: 64, maxQueueDelayUs: 1000, maxQueueSize: 100_000, dispatchWhenIdle: variant === 'idle' },
    },
  });
  const pipeline = new ProcessingPipeline({
    host,
    scheduler,
    optimizer: new ProcessingOptimizer({ totalSlots: 1024 }),
    defaultModel: 'mnist',
  });
  const { images } = readMnist('test', { count: 1000 });
  const gcs: { start: number; end: number; kind: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      gcs.push({
        start: e.startTime,
        end: e.startTime + e.duration,
        kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0,
      });
  });
  obs.observe({ entryTypes: ['gc'] });
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  const reqs: { start: number; end: number; input: unknown }[] = [];
  let next = 0;
  const run = async (n: number, record: boolean) => {
    next = 0;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next < n) {
          const i = next++;
          const input = {
            input: {
              name: 'input',
              datatype: 'FP32' as const,
              shape: [1, PIXELS],
              data: images.subarray((i % 1000) * PIXELS, ((i % 1000) + 1) * PIXELS),
            },
          };
          const start = performance.now();
          await pipeline.processRequest({ level: 'normal', inputs: input });
          if (record) reqs.push({ start, end: performance.now(), input });
        }
      }),
    );
  };
  await run(2000, false); // warm-up
  batches.length = 0;
  gcs.length = 0;
  loopDelay.enable();
  const t0 = performance.now();
  await run(total, true);
  const wall = performance.now() - t0;
  loopDelay.disable();
  obs.disconnect();
  await scheduler.drain(1000);
  await host.close();

  const lat = reqs.map((r) => r.end - r.start).sort((a, b) => a - b);
  const p99 = percentile(lat, 0.99);
  const slow = reqs.filter((r) => r.end - r.start >= p99);
  const parts = (r: (typeof reqs)[number]) => {
    const b = batchOf.get(r.input);
    if (!b) return { queue: NaN, exec: NaN, after: NaN };
    return { queue: b.dispatched - r.start, exec: b.done - b.dispatched, after: r.end - b.done };
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const split = (rs: typeof reqs) => {
    const p = rs.map(parts);
    return `queue ${fmt(mean(p.map((x) => x.queue)))} ms, execution ${fmt(mean(p.map((x) => x.exec)))} ms, after the batch ${fmt(mean(p.map((x) => x.after)))} ms`;
  };
  const overlapsGc = (r: (typeof reqs)[number]) => gcs.some((g) => g.start < r.end && g.end > r.start);
  const gcMs = gcs.map((g) => g.end - g.start).sort((a, b) => a - b);
  const execs = batches.map((b) => b.done - b.dispatched).sort((a, b) => a - b);
  const sizes = batches.map((b) => b.inputs.length);
  return [
    `in-process tail, ${variant}, concurrency ${CONC}, ${total} requests: ${fmt((total / wall) * 1000, 0)} req/s, p50 ${fmt(percentile(lat, 0.5))} ms, p99 ${fmt(p99)} ms`,
    `batches: ${batches.length}, mean size ${fmt(mean(sizes), 1)}; execution p50 ${fmt(percentile(execs, 0.5))} ms, p99 ${fmt(percentile(execs, 0.99))} ms`,
    `all requests: ${split(reqs)}`,
    `slowest 1 % (≥ p99): ${split(slow)}; ${slow.filter(overlapsGc).length} of ${slow.length} overlap a GC pause (all requests: ${fmt((100 * reqs.filter(overlapsGc).length) / reqs.length, 1)} %)`,
    `GC: ${gcs.length} pauses (${gcs.filter((g) => g.kind === 1).length} scavenges, ${gcs.filter((g) => g.kind === 2).length} mark-compact, ${gcs.filter((g) => g.kind > 2).length} other), ${fmt(gcMs.reduce((a, b) => a + b, 0))} ms in all (${fmt((100 * gcMs.reduce((a, b) => a + b, 0)) / wall, 1)} % of the run), p50 ${fmt(percentile(gcMs, 0.5))} ms, max ${fmt(gcMs[gcMs.length - 1])} ms`,
    `event-loop delay (1 ms resolution): p50 ${fmt(loopDelay.percentile(50) / 1e6)} ms, p99 ${fmt(loopDelay.percentile(99) / 1e6)} ms, max ${fmt(loopDelay.max / 1e6)} ms`,
  ].join('\n');
}

if (process.argv[1]?.endsWith('http-serve-tail.js')) {
  const variant = process.argv[2] === 'idle' ? 'idle' : 'delay';
  process.stdout.write(`${await serveTail(variant, Number(process.argv[3] ?? 10_000))}\n`);
}
