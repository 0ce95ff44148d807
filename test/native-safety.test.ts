// No JS action may crash the process: async native jobs whose inputs are
// transferred away (structuredClone + gc) or shrunk (resize(0)) while they run
// end with the right result or a typed error. Each attack runs in a child
// process (node --expose-gc) so that a crash shows as a signal, not a dead run.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

import { describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { medianRef } from '../src/core/federation/learning/reference.js';
import { decodeTensor, decodeTensorAsync, encodeTensor, encodeTensorAsync } from '../src/core/memory/codec.js';
import { ServerOptimizer } from '../src/core/federation/learning/server-optimizer.js';
import { randomRows } from './helpers.js';

const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');

function runAttack(name: string): { status: number | null; signal: string | null; line: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', viteNode, 'test/native-safety.child.ts', name], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, signal: r.signal, line: r.stdout.trim().split('\n').pop() ?? '', stderr: r.stderr };
}

describe('async jobs survive their inputs being freed or shrunk', () => {
  it.each([
    ['median-transfer', 'correct'],
    ['median-resize', 'correct'],
    ['fedavg-transfer', 'correct'],
    ['trimmed-mean-resize', 'correct'],
    ['multi-krum-transfer', 'correct'],
    ['encode-transfer', 'correct'],
    ['encode-resize', 'correct'],
    ['decode-transfer', 'correct'],
    ['decode-resize', 'correct'],
    // The caller's `out` is gone when the job ends: nothing to write into.
    ['decode-out-transfer', 'ERR_INVALID_ARG out'],
    ['decode-out-resize', 'ERR_INVALID_ARG out'],
    ['step-global-transfer', 'ERR_INVALID_ARG global'],
    ['step-global-resize', 'ERR_INVALID_ARG global'],
    ['step-aggregate-transfer', 'correct'],
    ['step-aggregate-resize', 'correct'],
    // Getters that run while the binding reads its arguments.
    ['rows-getter-transfer', 'ERR_INVALID_ARG clients[1]'],
    ['options-getter-transfer', 'correct'],
  ])(
    '%s: %s',
    (name, expected) => {
      const r = runAttack(name);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, `${r.line}\n${r.stderr}`).toBe(0);
      const out = JSON.parse(r.line) as { result: string; code?: string; field?: string };
      expect(out.result === 'correct' ? 'correct' : `${out.code} ${out.field}`).toBe(expected);
    },
    120_000,
  );
});

describe('SharedArrayBuffer inputs', () => {
  const shared = (rows: Float32Array[]): Float32Array[] =>
    rows.map((r) => {
      const s = new Float32Array(new SharedArrayBuffer(r.byteLength));
      s.set(r);
      return s;
    });

  it('aggregate sync and async give the reference result', async () => {
    const rows = randomRows(7, 5000, 11);
    const sab = shared(rows);
    const agg = new Aggregator({ strategy: 'median', asyncThresholdBytes: 0 });
    expect((await agg.aggregate(sab)).params).toEqual(medianRef(rows));
    expect(new Aggregator({ strategy: 'fedavg' }).aggregateSync(sab).params).toEqual(
      new Aggregator({ strategy: 'fedavg' }).aggregateSync(rows).params,
    );
  });

  it('codecs and the server optimizer read and write them', async () => {
    const [x] = shared(randomRows(1, 10_000, 12));
    const blob = encodeTensor(x!);
    expect(await encodeTensorAsync(x!)).toEqual(blob);
    const sabBlob = new Uint8Array(new SharedArrayBuffer(blob.length));
    sabBlob.set(blob);
    const out = new Float32Array(new SharedArrayBuffer(x!.byteLength));
    await decodeTensorAsync(sabBlob, { out });
    expect(out).toEqual(decodeTensor(blob));
    const [g, a] = shared(randomRows(2, 1000, 13));
    const plain = g!.slice();
    new ServerOptimizer({ optimizer: 'fedadam' }).stepSync(plain, a!.slice());
    await new ServerOptimizer({ optimizer: 'fedadam' }).step(g!, a!);
    expect(g).toEqual(plain);
  });
});
