/**
 * Large native results (>= 2 MiB) live in memory the addon recycles once their
 * arrays are collected (bindings/convert.cc; on Node 20, unless
 * WHALE_RESULT_POOL=off). Run by test/native-results.test.ts
 * with node --expose-gc: results made across many gc + event-loop cycles, some
 * kept alive, some cloned, transferred or dropped; every result must hold its
 * own inputs' answer to the end (a recycled buffer handed out while still
 * referenced would overwrite a kept one). Prints "ok" or the first mismatch.
 */
import { MessageChannel } from 'node:worker_threads';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { decodeTensor, encodeTensor } from '../src/core/memory/codec.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const P = 700_000; // 2.8 MB of float32: over the 2 MiB threshold
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Rows whose mean is round + 1 everywhere, exactly. */
function rowsFor(round: number): Float32Array[] {
  return [round, round + 1, round + 2].map((v) => new Float32Array(P).fill(v));
}

function check(result: Float32Array, expected: number, what: string): void {
  if (result.length !== P) throw new Error(`${what}: length ${result.length}`);
  for (let j = 0; j < P; j += 997) {
    if (result[j] !== expected) throw new Error(`${what}: [${j}] = ${result[j]}, expected ${expected}`);
  }
  if (result[P - 1] !== expected) throw new Error(`${what}: last = ${result[P - 1]}, expected ${expected}`);
}

async function main(): Promise<void> {
  const agg = new Aggregator({ strategy: 'fedavg', device: 'cpu' });
  const kept: Array<[Float32Array, number]> = [];
  for (let round = 0; round < 40; round++) {
    const params = agg.aggregateSync(rowsFor(round)).params;
    check(params, round + 1, `round ${round}`);
    if (round % 5 === 0) kept.push([params, round + 1]);
    if (round % 7 === 3) kept.push([structuredClone(params), round + 1]);
    if (round % 9 === 4) {
      const { port1, port2 } = new MessageChannel();
      const received = new Promise<Float32Array>((resolve) => port2.once('message', resolve));
      port1.postMessage(params, [params.buffer]);
      kept.push([await received, round + 1]);
      port1.close();
    }
    gc!();
    await turn();
    for (const [k, v] of kept) check(k, v, `kept result ${v - 1} after round ${round}`);
  }
  // Decoded tensors take the same path.
  const source = new Float32Array(P).map((_, j) => (j % 13) - 6);
  const blob = encodeTensor(source, { codec: 'int8' });
  for (let round = 0; round < 6; round++) {
    const out = decodeTensor(blob);
    if (out.length !== P) throw new Error(`decode length ${out.length}`);
    for (let j = 0; j < P; j += 991)
      if (Math.abs(out[j]! - source[j]!) > 0.05) throw new Error(`decode [${j}] = ${out[j]}`);
    gc!();
    await turn();
  }
  for (const [k, v] of kept) check(k, v, `kept result ${v - 1} at the end`);
  console.log('ok');
}

main().catch((e: unknown) => {
  console.log(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
