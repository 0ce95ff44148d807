import { describe, expect, it } from 'vitest';

import type { NamedTensors } from '../src/core/base/tensor.js';
import { ProcessingOptimizer } from '../src/core/processing/processing-optimizer.js';
import { combine } from '../src/core/processing/processing-pipeline.js';
import { deserializeTensors, digestRequest, serializeTensors } from '../src/core/processing/tensor-digest.js';
import { expectWhaleError } from './helpers.js';

const fp32 = (data: number[], shape = [1, data.length]): NamedTensors => ({
  x: { name: 'x', datatype: 'FP32', shape, data: Float32Array.from(data) },
});

describe('ProcessingOptimizer', () => {
  it('maps complexity to slots and device, and validates it', async () => {
    const cpuOnly = new ProcessingOptimizer({ totalSlots: 8 });
    expect(cpuOnly.allocateResources(0)).toEqual({ device: 'cpu', slots: 1 });
    expect(cpuOnly.allocateResources(0.5)).toEqual({ device: 'cpu', slots: 4 });
    expect(cpuOnly.allocateResources(1)).toEqual({ device: 'cpu', slots: 8 });
    const withGpu = new ProcessingOptimizer({ totalSlots: 8, gpus: ['cuda:0'], gpuAbove: 0.6 });
    expect(withGpu.allocateResources(0.59).device).toBe('cpu');
    expect(withGpu.allocateResources(0.6).device).toBe('cuda:0');
    for (const bad of [-0.1, 1.5, NaN, Infinity, '0.5' as unknown as number]) {
      await expectWhaleError(() => cpuOnly.allocateResources(bad), 'ERR_INVALID_ARG', 'complexity');
    }
  });

  it('withSlots never lets the slots in use exceed the total, and serves waiters in order', async () => {
    const o = new ProcessingOptimizer({ totalSlots: 4 });
    let peak = 0;
    const order: number[] = [];
    const job = (i: number, slots: number) =>
      o.withSlots(slots, async () => {
        peak = Math.max(peak, o.slotsInUse());
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
      });
    await Promise.all([job(0, 3), job(1, 3), job(2, 1), job(3, 4), job(4, 99)]);
    expect(peak).toBeLessThanOrEqual(4);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(o.slotsInUse()).toBe(0);
    await expect(o.withSlots(1, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(o.slotsInUse()).toBe(0);
  });
});

describe('response cache keys and values', () => {
  it('the digest changes with any byte, shape, dtype, model or version, and not with input order', () => {
    const base = digestRequest('m', '1', fp32([1, 2, 3, 4]));
    expect(digestRequest('m', '1', fp32([1, 2, 3, 4]))).toBe(base);
    expect(digestRequest('m', '1', fp32([1, 2, 3, 4.000001]))).not.toBe(base);
    expect(digestRequest('m', '1', fp32([1, 2, 3, 4], [2, 2]))).not.toBe(base);
    expect(digestRequest('m', '2', fp32([1, 2, 3, 4]))).not.toBe(base);
    expect(digestRequest('m1', '', fp32([1, 2, 3, 4]))).not.toBe(digestRequest('m', '1', fp32([1, 2, 3, 4])));
    const i32: NamedTensors = {
      x: { name: 'x', datatype: 'INT32', shape: [1, 4], data: Int32Array.from([1, 2, 3, 4]) },
    };
    expect(digestRequest('m', '1', i32)).not.toBe(base);
    const two = { ...fp32([1]), y: { name: 'y', datatype: 'BYTES' as const, shape: [1], data: ['a'] } };
    const swapped = { y: two.y, x: two.x };
    expect(digestRequest('m', '1', two)).toBe(digestRequest('m', '1', swapped));
  });

  it('serialized tensors come back equal, with their typed storage', () => {
    const t: NamedTensors = {
      a: { name: 'a', datatype: 'FP32', shape: [2], data: Float32Array.from([1.5, -0]) },
      b: { name: 'b', datatype: 'INT64', shape: [2], data: BigInt64Array.from([1n, -(2n ** 62n)]) },
      c: { name: 'c', datatype: 'BOOL', shape: [2], data: [true, false] },
      d: { name: 'd', datatype: 'BYTES', shape: [1], data: ['héllo'] },
    };
    const back = deserializeTensors(serializeTensors(t));
    expect(back).toEqual(t);
    expect(back.a!.data).toBeInstanceOf(Float32Array);
    expect(back.b!.data).toBeInstanceOf(BigInt64Array);
  });

  it('combine averages floating outputs element-wise and refuses mismatched sizes', async () => {
    const mean = combine([{ y: fp32([1, 2]).x! }, { y: fp32([3, 6]).x! }].map((r) => ({ y: { ...r.y, name: 'y' } })));
    expect(Array.from(mean.y!.data as Float32Array)).toEqual([2, 4]);
    await expectWhaleError(
      () => combine([{ y: fp32([1, 2]).x! }, { y: fp32([1]).x! }]),
      'ERR_SHAPE_MISMATCH',
      'outputs.y',
    );
  });
});
