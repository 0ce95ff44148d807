/**
 * End-to-end inference on the shipped MNIST model, closed loop at concurrency
 * 1, 8 and 64 (one image per request): the serving path (pipeline → native
 * scheduler → OnnxModel) with dynamic batching on and off, and the baseline a
 * user would write, a plain loop calling onnxruntime-node's session.run.
 */
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { silentLogger } from '../src/core/base/logger.js';
import type { NamedTensors } from '../src/core/base/tensor.js';
import { ModelHost } from '../src/core/processing/model-host.js';
import { ProcessingOptimizer } from '../src/core/processing/processing-optimizer.js';
import { ProcessingPipeline } from '../src/core/processing/processing-pipeline.js';
import { TaskScheduler } from '../src/core/processing/task-scheduler.js';
import { OnnxModel } from '../src/models/onnx-model.js';
import { packageRoot } from '../src/native/loader.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { fmt, median, percentile, table } from './stats.js';

const PIXELS = 784;

interface LoopResult {
  throughput: number;
  p50: number;
  p99: number;
}

/** C workers each send requests back to back until `total` are done. */
async function closedLoop(concurrency: number, total: number, send: (i: number) => Promise<unknown>): Promise<LoopResult> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await send(i);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { throughput: total / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function servingPath(modelPath: string, batching: boolean, maxQueueDelayUs: number) {
  const host = new ModelHost({ logger: silentLogger });
  await host.add(new OnnxModel({ name: 'mnist', path: modelPath }));
  const scheduler = new TaskScheduler({
    executor: (model, inputs) => host.runBatch(model, inputs as NamedTensors[]),
    models: { mnist: { maxBatchSize: batching ? 64 : 1, maxQueueDelayUs: batching ? maxQueueDelayUs : 0, maxQueueSize: 100_000 } },
  });
  const pipeline = new ProcessingPipeline({ host, scheduler, optimizer: new ProcessingOptimizer({ totalSlots: 1024 }), defaultModel: 'mnist' });
  return {
    send: (image: Float32Array) =>
      pipeline.processRequest({ level: 'normal', inputs: { input: { name: 'input', datatype: 'FP32', shape: [1, PIXELS], data: image } } }),
    close: async () => {
      await scheduler.drain(1000);
      await host.close();
    },
  };
}

export async function benchServeE2E(o: { runs: number; quick: boolean }): Promise<{ text: string; rows: unknown[] }> {
  const modelPath = join(packageRoot(), 'models', 'mnist', 'model.onnx');
  const { images } = readMnist('test', { count: 1000 });
  const image = (i: number) => images.subarray((i % 1000) * PIXELS, ((i % 1000) + 1) * PIXELS);
  const total = o.quick ? 2_000 : 10_000;
  const delayUs = 1_000;
  const session = await ort.InferenceSession.create(modelPath);
  const inputName = session.inputNames[0]!;
  const rows: Record<string, unknown>[] = [];
  for (const concurrency of [1, 8, 64]) {
    const runs: Record<string, LoopResult[]> = { direct: [], batched: [], unbatched: [] };
    for (let r = 0; r < o.runs; r++) {
      runs.direct!.push(
        await closedLoop(concurrency, total, (i) => session.run({ [inputName]: new ort.Tensor('float32', image(i), [1, PIXELS]) })),
      );
      for (const [name, batching] of [['batched', true], ['unbatched', false]] as const) {
        const path = await servingPath(modelPath, batching, delayUs);
        runs[name]!.push(await closedLoop(concurrency, total, (i) => path.send(image(i))));
        await path.close();
      }
    }
    const med = (k: string, f: keyof LoopResult) => median(runs[k]!.map((x) => x[f]));
    rows.push({
      concurrency,
      direct: { throughput: med('direct', 'throughput'), p50: med('direct', 'p50'), p99: med('direct', 'p99') },
      batched: { throughput: med('batched', 'throughput'), p50: med('batched', 'p50'), p99: med('batched', 'p99') },
      unbatched: { throughput: med('unbatched', 'throughput'), p50: med('unbatched', 'p50'), p99: med('unbatched', 'p99') },
    });
  }
  await session.release();
  const r = rows as { concurrency: number; direct: LoopResult; batched: LoopResult; unbatched: LoopResult }[];
  const text = [
    `end-to-end inference, shipped MNIST model (ONNX, CPU EP), ${total} requests of 1 image per run, median of ${o.runs} runs;`,
    `batched: maxBatchSize 64, maxQueueDelayUs ${delayUs}; unbatched: maxBatchSize 1; direct: session.run per request, no server`,
    '',
    table(
      ['conc', 'direct req/s', 'unbatched req/s', 'batched req/s', 'batched/unbatched', 'batched/direct', 'p50 ms d/u/b', 'p99 ms d/u/b'],
      r.map((x) => [
        String(x.concurrency),
        fmt(x.direct.throughput, 0),
        fmt(x.unbatched.throughput, 0),
        fmt(x.batched.throughput, 0),
        `${fmt(x.batched.throughput / x.unbatched.throughput)}x`,
        `${fmt(x.batched.throughput / x.direct.throughput)}x`,
        `${fmt(x.direct.p50)}/${fmt(x.unbatched.p50)}/${fmt(x.batched.p50)}`,
        `${fmt(x.direct.p99)}/${fmt(x.unbatched.p99)}/${fmt(x.batched.p99)}`,
      ]),
    ),
  ].join('\n');
  return { text, rows };
}
