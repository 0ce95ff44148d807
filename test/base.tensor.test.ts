import { describe, expect, it } from 'vitest';

import {
  concatBatch,
  concatTensors,
  splitBatch,
  validateSpecs,
  validateTensors,
  type NamedTensors,
  type Tensor,
  type TensorSpec,
} from '../src/core/base/tensor.js';
import { expectWhaleError } from './helpers.js';

const specs: TensorSpec[] = [
  { name: 'x', datatype: 'FP32', shape: [-1, 3] },
  { name: 'mask', datatype: 'BOOL', shape: [-1] },
];

function fp32(rows: number, start = 0): Tensor {
  return {
    name: 'x',
    datatype: 'FP32',
    shape: [rows, 3],
    data: Float32Array.from({ length: rows * 3 }, (_, i) => start + i),
  };
}

function mask(rows: number): Tensor {
  return { name: 'mask', datatype: 'BOOL', shape: [rows], data: Array.from({ length: rows }, (_, i) => i % 2 === 0) };
}

describe('validateTensors', () => {
  it('accepts inputs that match the declared specs, any batch size', () => {
    expect(() => validateTensors(specs, { x: fp32(2), mask: mask(2) })).not.toThrow();
    expect(() => validateTensors(specs, { x: fp32(0), mask: mask(0) })).not.toThrow();
  });

  it('names an unknown input', async () => {
    const e = await expectWhaleError(
      () => validateTensors(specs, { x: fp32(1), mask: mask(1), extra: fp32(1) }),
      'ERR_INVALID_ARG',
      'inputs.extra',
    );
    expect(e.message).toContain('x, mask');
  });

  it('names a missing input', async () => {
    await expectWhaleError(() => validateTensors(specs, { x: fp32(1) }), 'ERR_INVALID_ARG', 'inputs.mask');
  });

  it('rejects a datatype other than the declared one', async () => {
    const x = { name: 'x', datatype: 'FP64', shape: [1, 3], data: new Float64Array(3) } as Tensor;
    await expectWhaleError(() => validateTensors(specs, { x, mask: mask(1) }), 'ERR_INVALID_ARG', 'inputs.x.datatype');
  });

  it('rejects storage that does not fit the datatype', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float64Array(3) } as Tensor;
    const e = await expectWhaleError(
      () => validateTensors(specs, { x, mask: mask(1) }),
      'ERR_INVALID_ARG',
      'inputs.x.data',
    );
    expect(e.message).toContain('Float32Array');
    const m = { name: 'mask', datatype: 'BOOL', shape: [1], data: [1] } as unknown as Tensor;
    await expectWhaleError(
      () => validateTensors(specs, { x: fp32(1), mask: m }),
      'ERR_INVALID_ARG',
      'inputs.mask.data',
    );
  });

  it('rejects a shape the spec does not allow (rank or fixed dimension)', async () => {
    const wide = { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array(4) } as Tensor;
    const e = await expectWhaleError(
      () => validateTensors(specs, { x: wide, mask: mask(1) }),
      'ERR_SHAPE_MISMATCH',
      'inputs.x.shape',
    );
    expect(e.message).toContain('[?, 3]');
    const flat = { name: 'x', datatype: 'FP32', shape: [3], data: new Float32Array(3) } as Tensor;
    await expectWhaleError(
      () => validateTensors(specs, { x: flat, mask: mask(1) }),
      'ERR_SHAPE_MISMATCH',
      'inputs.x.shape',
    );
  });

  it('rejects data whose length is not the product of the shape', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [2, 3], data: new Float32Array(5) } as Tensor;
    const e = await expectWhaleError(
      () => validateTensors(specs, { x, mask: mask(2) }),
      'ERR_INVALID_ARG',
      'inputs.x.data',
    );
    expect(e.message).toContain('5 elements');
  });

  it('rejects negative or fractional dimensions and non-objects', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [-1, 3], data: new Float32Array(3) } as Tensor;
    await expectWhaleError(() => validateTensors(specs, { x, mask: mask(1) }), 'ERR_INVALID_ARG', 'inputs.x.shape');
    await expectWhaleError(() => validateTensors(specs, null as unknown as NamedTensors), 'ERR_INVALID_ARG', 'inputs');
  });

  it('prefixes fields with the given location', async () => {
    await expectWhaleError(
      () => validateTensors(specs, { x: fp32(1) }, 'inputs[3]'),
      'ERR_INVALID_ARG',
      'inputs[3].mask',
    );
  });
});

describe('validateSpecs', () => {
  it('rejects duplicate names, unknown datatypes and bad dimensions', async () => {
    await expectWhaleError(() => validateSpecs([specs[0]!, specs[0]!], 'inputs'), 'ERR_INVALID_ARG', 'inputs[1].name');
    await expectWhaleError(
      () => validateSpecs([{ name: 'a', datatype: 'FP8' as never, shape: [1] }], 'outputs'),
      'ERR_INVALID_ARG',
      'outputs[0].datatype',
    );
    await expectWhaleError(
      () => validateSpecs([{ name: 'a', datatype: 'FP32', shape: [-2] }], 'inputs'),
      'ERR_INVALID_ARG',
      'inputs[0].shape',
    );
    await expectWhaleError(
      () => validateSpecs([{ name: '', datatype: 'FP32', shape: [1] }], 'inputs'),
      'ERR_INVALID_ARG',
      'inputs[0].name',
    );
  });
});

describe('concatBatch / splitBatch', () => {
  it('stacks requests on dimension 0 and splits them back unchanged', () => {
    const reqs: NamedTensors[] = [
      { x: fp32(1, 0), mask: mask(1) },
      { x: fp32(3, 100), mask: mask(3) },
      { x: fp32(2, 200), mask: mask(2) },
    ];
    const { tensors, sizes } = concatBatch(reqs);
    expect(sizes).toEqual([1, 3, 2]);
    expect(tensors.x!.shape).toEqual([6, 3]);
    expect(tensors.x!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(tensors.x!.data as Float32Array)).toEqual([
      ...Array.from(reqs[0]!.x!.data as Float32Array),
      ...Array.from(reqs[1]!.x!.data as Float32Array),
      ...Array.from(reqs[2]!.x!.data as Float32Array),
    ]);
    expect(tensors.mask!.data).toEqual([true, true, false, true, true, false]);
    const back = splitBatch(tensors, sizes);
    expect(back).toEqual(reqs);
  });

  it('keeps 64-bit integers and strings', () => {
    const a: Tensor = { name: 'id', datatype: 'INT64', shape: [1, 2], data: BigInt64Array.from([1n, -2n]) };
    const b: Tensor = {
      name: 'id',
      datatype: 'INT64',
      shape: [2, 2],
      data: BigInt64Array.from([3n, 4n, 2n ** 62n, 6n]),
    };
    const joined = concatTensors([a, b]);
    expect(joined.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(joined.data as BigInt64Array)).toEqual([1n, -2n, 3n, 4n, 2n ** 62n, 6n]);
    const s1: Tensor = { name: 's', datatype: 'BYTES', shape: [1], data: ['a'] };
    const s2: Tensor = { name: 's', datatype: 'BYTES', shape: [2], data: ['b', 'c'] };
    expect(splitBatch({ s: concatTensors([s1, s2]) }, [1, 2])).toEqual([{ s: s1 }, { s: s2 }]);
  });

  it('split parts are copies, not views of the batch', () => {
    const { tensors, sizes } = concatBatch([{ x: fp32(1) }, { x: fp32(1) }]);
    const parts = splitBatch(tensors, sizes);
    (tensors.x!.data as Float32Array)[0] = 999;
    expect((parts[0]!.x!.data as Float32Array)[0]).toBe(0);
  });

  it('refuses tensors that cannot be stacked', async () => {
    const wide: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array(4) };
    await expectWhaleError(
      () => concatBatch([{ x: fp32(1) }, { x: wide }]),
      'ERR_SHAPE_MISMATCH',
      'inputs[*].x[1].shape',
    );
    await expectWhaleError(() => concatBatch([{ x: fp32(1) }, { y: fp32(1) }]), 'ERR_INVALID_ARG', 'inputs[1]');
    await expectWhaleError(() => concatBatch([{ x: fp32(2), mask: mask(1) }]), 'ERR_SHAPE_MISMATCH', 'inputs[0]');
    await expectWhaleError(() => concatBatch([]), 'ERR_INVALID_ARG', 'inputs');
    const scalar: Tensor = { name: 'x', datatype: 'FP32', shape: [], data: new Float32Array(1) };
    await expectWhaleError(() => concatBatch([{ x: scalar }]), 'ERR_SHAPE_MISMATCH', 'inputs[0].x.shape');
  });

  it('refuses a split whose sizes do not add up to the rows', async () => {
    await expectWhaleError(() => splitBatch({ x: fp32(3) }, [1, 1]), 'ERR_SHAPE_MISMATCH', 'outputs.x.shape');
    await expectWhaleError(() => splitBatch({ x: fp32(3) }, [1.5, 1.5]), 'ERR_INVALID_ARG', 'sizes');
  });
});
