import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { LearningOptimizer } from '../src/core/federation/learning/client/learning-optimizer.js';
import { partitionIndices } from '../src/apps/mnist/mnist-partition.js';
import { CheckpointStore } from '../src/core/federation/orchestration/checkpoint-store.js';
import { ClaimCheck } from '../src/core/federation/orchestration/claim-check.js';
import { selectClients } from '../src/core/federation/orchestration/client-selector.js';
import { DiskKv, MemoryKv } from '../src/core/federation/orchestration/kv-store.js';
import { TopKCompressor } from '../src/core/memory/topk.js';
import { readMnist } from '../src/models/mnist-idx.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('ClaimCheck', () => {
  const big = Float32Array.from({ length: 100_000 }, (_, i) => Math.sin(i));

  it('stores tensors above the threshold under their sha256 and keeps the message small', async () => {
    const store = new MemoryKv();
    const claims = new ClaimCheck(store, 64 * 1024);
    const ref = await claims.packDense(big, 'f32');
    expect(ref.data.inline).toBeUndefined();
    expect(JSON.stringify(ref).length).toBeLessThan(300);
    expect(store.size).toBe(1);
    expect(Array.from(await claims.unpack(ref, big.length))).toEqual(Array.from(big));
    const small = await claims.packDense(big.subarray(0, 100), 'f32');
    expect(small.data.inline).toBeDefined();
    expect(store.size).toBe(1);
  });

  it('int8 uplink is about a quarter of f32 and top-k sends only k values', async () => {
    const claims = new ClaimCheck(new MemoryKv(), 0);
    const f32 = await claims.packDense(big, 'f32');
    const int8 = await claims.packDense(big, 'int8');
    expect(int8.data.bytes / f32.data.bytes).toBeLessThan(0.3);
    const sparse = new TopKCompressor({ ratio: 0.01 }).compress('c', big);
    const ref = await claims.packSparse(sparse, 'f32');
    expect(ref.data.bytes + ref.indices!.bytes).toBeLessThan(f32.data.bytes * 0.03);
    const back = await claims.unpack(ref, big.length);
    expect(back.filter((v) => v !== 0).length).toBe(sparse.indices.length);
  });

  it('refuses a blob whose bytes do not match the reference hash (ERR_CHECKSUM) and a missing blob (ERR_NOT_FOUND)', async () => {
    const store = new MemoryKv();
    const claims = new ClaimCheck(store, 0);
    const ref = await claims.packDense(big, 'f32');
    const other = await claims.packDense(
      big.map((v) => v + 1),
      'f32',
    );
    await store.set(`fed/blob/${ref.data.sha256}`, (await store.get(`fed/blob/${other.data.sha256}`))!);
    await expect(claims.unpack(ref)).rejects.toMatchObject({ code: 'ERR_CHECKSUM' });
    await claims.release(other);
    await expect(claims.unpack(other)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(claims.unpack({ ...ref, length: 5 }, big.length)).rejects.toMatchObject({
      code: 'ERR_SHAPE_MISMATCH',
    });
  });
});

describe('CheckpointStore on disk', () => {
  it('round-trips the model and history, and refuses a checkpoint of another federation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-fed-ckpt-'));
    dirs.push(dir);
    const kv = new DiskKv(dir);
    await kv.init();
    const store = new CheckpointStore(kv);
    const otherProcess = new DiskKv(dir); // opened before the write: it must still see it
    const weights = Float32Array.from({ length: 1000 }, (_, i) => i / 7);
    await store.save({ federationId: 'a', round: 4, weights, history: [] });
    const back = await new CheckpointStore(otherProcess).load('a');
    expect(back?.round).toBe(4);
    expect(Array.from(back!.weights)).toEqual(Array.from(weights));
    expect(await store.load('b')).toBeUndefined();
  });
});

describe('client selection and partitions', () => {
  it('selects max(minClients, C x K) distinct registered clients, reproducibly', () => {
    const all = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const a = selectClients(all, { fraction: 0.1, minClients: 1, seed: 3, round: 7 });
    expect(a).toHaveLength(10);
    expect(new Set(a).size).toBe(10);
    expect(selectClients(all, { fraction: 0.1, minClients: 1, seed: 3, round: 7 })).toEqual(a);
    expect(selectClients(all, { fraction: 0.1, minClients: 1, seed: 3, round: 8 })).not.toEqual(a);
    expect(selectClients(all, { fraction: 0.01, minClients: 5, seed: 1, round: 1 })).toHaveLength(5);
    expect(() => selectClients(all.slice(0, 2), { fraction: 1, minClients: 3, seed: 1, round: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_NO_CLIENTS' }),
    );
  });

  it('IID: 100 clients of 600; non-IID: 2 shards of 300 each, so at most 2-4 digits per client', () => {
    const { labels } = readMnist('train');
    const iid = partitionIndices(labels, { kind: 'iid', clients: 100, seed: 1 });
    expect(iid.every((p) => p.length === 600)).toBe(true);
    expect(new Set(iid.flat()).size).toBe(60_000);
    const non = partitionIndices(labels, { kind: 'noniid', clients: 100, seed: 1 });
    expect(non.every((p) => p.length === 600)).toBe(true);
    expect(new Set(non.flat()).size).toBe(60_000);
    const digits = non.map((p) => new Set(p.map((i) => labels[i])).size);
    expect(Math.max(...digits)).toBeLessThanOrEqual(4);
    const iidDigits = iid.map((p) => new Set(p.map((i) => labels[i])).size);
    expect(Math.min(...iidDigits)).toBe(10);
  });
});

describe('LearningOptimizer', () => {
  it('decays the client rate, follows the server schedule, and stops at the target', () => {
    const o = new LearningOptimizer({
      clientLr: 0.1,
      clientLrDecay: 0.5,
      serverLr: 1,
      serverLrSchedule: 'step',
      stepRounds: 2,
      gamma: 0.1,
      targetAccuracy: 0.9,
      mu: 0.01,
    });
    expect([1, 2, 3].map((r) => o.clientLr(r))).toEqual([0.1, 0.05, 0.025]);
    expect([1, 2, 3].map((r) => o.serverLr(r))).toEqual([1, 1, 0.1]);
    expect(o.mu).toBe(0.01);
    expect(o.reachedTarget(0.89)).toBe(false);
    expect(o.reachedTarget(0.9)).toBe(true);
    expect(new LearningOptimizer({ clientLr: 1, serverLrSchedule: 'inverse-sqrt' }).serverLr(4)).toBe(0.5);
    expect(() => new LearningOptimizer({ clientLr: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'options.clientLr' }),
    );
    expect(() => new LearningOptimizer({ clientLr: 1, serverLrSchedule: 'cosine' })).toThrow(
      expect.objectContaining({ field: 'options.totalRounds' }),
    );
  });
});
