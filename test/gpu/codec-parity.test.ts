// The CUDA codec kernels against the CPU path (npm run test:gpu, or
// scripts/gpu-check.sh on a machine with a GPU): the same blob for every codec
// whose CPU result is fixed bit for bit, and the int4 error bound.
import { describe, expect, it } from 'vitest';

import { decodeTensor, encodeTensor, type TensorCodec } from '../../src/core/memory/codec.js';
import { relativeL2Error } from '../../src/core/memory/codec-reference.js';
import { randomRows } from '../helpers.js';

describe('CUDA codecs match the CPU path', () => {
  const x = randomRows(1, 1_000_003, 41, 3)[0]!; // not a multiple of any block size
  it.each<TensorCodec>(['int8', 'fp16', 'bf16'])('%s: identical blobs and decodes', (codec) => {
    const cpu = encodeTensor(x, { codec, device: 'cpu' });
    const gpu = encodeTensor(x, { codec, device: 'cuda:0' });
    expect(Buffer.compare(gpu, cpu)).toBe(0);
    const a = decodeTensor(cpu, { device: 'cpu' }),
      b = decodeTensor(cpu, { device: 'cuda:0' });
    expect(Buffer.compare(Buffer.from(b.buffer), Buffer.from(a.buffer))).toBe(0);
  });

  it('int4: within its error bound, and GPU decode equals CPU decode', () => {
    const gpu = encodeTensor(x, { codec: 'int4', device: 'cuda:0' });
    const cpuDecoded = decodeTensor(gpu, { device: 'cpu' });
    expect(relativeL2Error(x, cpuDecoded)).toBeLessThanOrEqual(0.1);
    const gpuDecoded = decodeTensor(gpu, { device: 'cuda:0' });
    expect(Buffer.compare(Buffer.from(gpuDecoded.buffer), Buffer.from(cpuDecoded.buffer))).toBe(0);
  });
});
