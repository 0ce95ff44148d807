/**
 * OnnxModel on the shipped MNIST model (models/mnist/model.onnx) with real
 * MNIST test images, plus the adapter's error paths and dtype conversions.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NamedTensors } from '../src/core/base/tensor.js';
import { createModel, onnxProviderInfo, OnnxModel, TfjsModel } from '../src/models/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, readMnist, type MnistSplit } from '../src/models/mnist-idx.js';
import { expectClose, expectWhaleError } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'models', 'mnist', 'model.onnx');
const metrics = JSON.parse(readFileSync(join(ROOT, 'models', 'mnist', 'metrics.json'), 'utf8')) as {
  onnxTestAccuracy: number;
  tfjsTestAccuracy: number;
  testImages: number;
};

function images(set: MnistSplit, from: number, count: number): NamedTensors {
  const data = set.images.slice(from * MNIST_PIXELS, (from + count) * MNIST_PIXELS);
  return { input: { name: 'input', datatype: 'FP32', shape: [count, MNIST_PIXELS], data } };
}

let test: MnistSplit;
let model: OnnxModel;
const scratch = mkdtempSync(join(tmpdir(), 'whale-onnx-'));

beforeAll(async () => {
  test = readMnist('test');
  model = new OnnxModel({ name: 'mnist', path: MODEL, executionProviders: 'auto', intraOpThreads: 1 });
  await model.load();
});

afterAll(async () => {
  await model.unload();
  rmSync(scratch, { recursive: true, force: true });
});

describe('OnnxModel on the shipped MNIST model', () => {
  it('reads its signature from the session', () => {
    expect(model.status).toBe('ready');
    expect(model.platform).toBe('onnxruntime_onnx');
    expect(model.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, MNIST_PIXELS] }]);
    expect(model.outputs).toEqual([{ name: 'scores', datatype: 'FP32', shape: [-1, MNIST_CLASSES] }]);
  });

  it('reports the execution provider that runs it', async () => {
    const d = model.describe();
    const info = await onnxProviderInfo();
    expect(info.backends.map((b) => b.name)).toContain('cpu');
    // CUDA runs only when its provider library is installed; otherwise the note says why not.
    expect(d.provider).toBe(info.cuda.libraryPresent ? 'cuda' : 'cpu');
    if (d.provider === 'cpu') expect(String(d.providerNote)).toContain(info.cuda.note);
  });

  it('classifies the whole 10k test set at the accuracy recorded by the training script', async () => {
    // Ten requests of 1000 images in one batched run.
    const requests = Array.from({ length: 10 }, (_, i) => images(test, i * 1000, 1000));
    const outs = await model.processBatch(requests);
    let correct = 0;
    outs.forEach((o, i) => {
      expect(o.scores!.shape).toEqual([1000, MNIST_CLASSES]);
      argmaxRows(o.scores!.data as Float32Array, MNIST_CLASSES).forEach((p, k) => {
        if (p === test.labels[i * 1000 + k]) correct++;
      });
    });
    expect(test.count).toBe(metrics.testImages);
    expect(correct / test.count).toBeGreaterThanOrEqual(metrics.onnxTestAccuracy - 0.001);
    expect(metrics.onnxTestAccuracy).toBeGreaterThan(0.95);
  });

  it('the first 1000 test images: accuracy at least the recorded test accuracy minus 2 points; scores are probabilities', async () => {
    const out = await model.process(images(test, 0, 1000));
    const scores = out.scores!.data as Float32Array;
    const acc = argmaxRows(scores, MNIST_CLASSES).filter((p, i) => p === test.labels[i]).length / 1000;
    expect(acc).toBeGreaterThanOrEqual(metrics.onnxTestAccuracy - 0.02);
    for (let r = 0; r < 1000; r++) {
      const row = scores.subarray(r * MNIST_CLASSES, (r + 1) * MNIST_CLASSES);
      expect(row.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    }
  });

  it('processBatch gives each request what process gives it alone', async () => {
    const sizes = [1, 3, 1, 7, 2, 1, 16, 5];
    let at = 2000;
    const requests = sizes.map((n) => {
      const r = images(test, at, n);
      at += n;
      return r;
    });
    const batched = await model.processBatch(requests);
    for (const [i, req] of requests.entries()) {
      const alone = await model.process(req);
      expect(batched[i]!.scores!.shape).toEqual([sizes[i], MNIST_CLASSES]);
      expectClose(batched[i]!.scores!.data as Float32Array, alone.scores!.data as Float32Array, 1e-5, 1e-6);
    }
  });

  it('refuses inputs that do not fit the signature, before running', async () => {
    const bad = { input: { name: 'input', datatype: 'FP32' as const, shape: [1, 783], data: new Float32Array(783) } };
    await expectWhaleError(() => model.process(bad), 'ERR_SHAPE_MISMATCH', 'inputs.input.shape');
    const f64 = { input: { name: 'input', datatype: 'FP64' as const, shape: [1, 784], data: new Float64Array(784) } };
    await expectWhaleError(() => model.process(f64), 'ERR_INVALID_ARG', 'inputs.input.datatype');
    await expectWhaleError(() => model.process({}), 'ERR_INVALID_ARG', 'inputs.input');
  });
});

describe('OnnxModel failures', () => {
  it('a model file that does not exist: typed error, status failed', async () => {
    const m = new OnnxModel({ name: 'gone', path: join(scratch, 'missing.onnx') });
    const e = await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD', 'path');
    expect(e.message).toContain('does not exist');
    expect(m.status).toBe('failed');
    expect(m.describe().lastError).toContain('missing.onnx');
  });

  it('a corrupt model file: typed error, status failed; a directory is not a model', async () => {
    const bytes = readFileSync(MODEL);
    const corrupt = join(scratch, 'corrupt.onnx');
    writeFileSync(corrupt, bytes.subarray(0, 1000));
    const m = new OnnxModel({ name: 'corrupt', path: corrupt });
    await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD', 'path');
    expect(m.status).toBe('failed');
    const garbage = new OnnxModel({
      name: 'garbage',
      bytes: Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff),
    });
    await expectWhaleError(() => garbage.load(), 'ERR_MODEL_LOAD', 'bytes');
    expect(garbage.status).toBe('failed');
    await expectWhaleError(() => new OnnxModel({ name: 'dir', path: scratch }).load(), 'ERR_MODEL_LOAD', 'path');
  });

  it('the CUDA provider asked for explicitly and not usable: ERR_DEVICE_UNAVAILABLE, status failed', async () => {
    const info = await onnxProviderInfo();
    const m = new OnnxModel({ name: 'gpu-only', path: MODEL, executionProviders: 'cuda' });
    if (info.cuda.libraryPresent) {
      // A machine with the CUDA provider installed: it must run there.
      await m.load();
      expect(m.describe().provider).toBe('cuda');
      await m.unload();
    } else {
      await expectWhaleError(() => m.load(), 'ERR_DEVICE_UNAVAILABLE', 'executionProviders');
      expect(m.status).toBe('failed');
    }
  });

  it('rejects bad options with the field named', async () => {
    await expectWhaleError(() => new OnnxModel({ name: 'x' }), 'ERR_INVALID_ARG', 'path');
    await expectWhaleError(
      () => new OnnxModel({ name: 'x', path: MODEL, bytes: new Uint8Array(1) }),
      'ERR_INVALID_ARG',
      'path',
    );
    await expectWhaleError(
      () => new OnnxModel({ name: 'x', path: MODEL, executionProviders: 'tpu' as never }),
      'ERR_INVALID_ARG',
      'executionProviders',
    );
    await expectWhaleError(
      () => new OnnxModel({ name: 'x', path: MODEL, intraOpThreads: 0 }),
      'ERR_INVALID_ARG',
      'intraOpThreads',
    );
    await expectWhaleError(
      () => new OnnxModel({ name: 'x', path: MODEL, deviceId: -1 }),
      'ERR_INVALID_ARG',
      'deviceId',
    );
  });

  it('loads from bytes (a private copy) and reloads after an unload', async () => {
    const bytes = new Uint8Array(readFileSync(MODEL));
    const m = new OnnxModel({ name: 'from-bytes', bytes, executionProviders: 'cpu' });
    bytes.fill(0);
    await m.load();
    expect(m.describe().provider).toBe('cpu');
    const first = await m.process(images(test, 0, 4));
    await m.unload();
    expect(m.status).toBe('stopped');
    await m.load();
    const again = await m.process(images(test, 0, 4));
    expect(Array.from(again.scores!.data as Float32Array)).toEqual(Array.from(first.scores!.data as Float32Array));
    await m.unload();
  });

  it('a CPU grant of 0 GPUs keeps auto on the CPU and sets the threads', async () => {
    const m = new OnnxModel({ name: 'granted', path: MODEL });
    m.allocateResources(1, 64 << 20, 0);
    await m.load();
    expect(m.describe().provider).toBe('cpu');
    expect(String(m.describe().providerNote)).toContain('gpu = 0');
    await m.unload();
  });
});

describe('OnnxModel dtype conversions', () => {
  /** A graph with BOOL → Not and INT64 → Identity, written with onnx-proto. */
  function boolInt64Model(): Uint8Array {
    const { onnx } = onnxProto;
    const T = onnx.TensorProto.DataType;
    const value = (name: string, elemType: number) =>
      onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'n' }, { dimValue: 2 }] } } },
      });
    const m = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'dtypes',
        node: [
          { opType: 'Not', input: ['flags'], output: ['not_flags'] },
          { opType: 'Identity', input: ['ids'], output: ['same_ids'] },
        ],
        input: [value('flags', T.BOOL), value('ids', T.INT64)],
        output: [value('not_flags', T.BOOL), value('same_ids', T.INT64)],
      },
    });
    return onnx.ModelProto.encode(m).finish();
  }

  it('BOOL and INT64 tensors round-trip, batched and alone', async () => {
    const m = new OnnxModel({ name: 'dtypes', bytes: boolInt64Model(), executionProviders: 'cpu' });
    await m.load();
    expect(m.inputs.map((s) => [s.name, s.datatype, s.shape])).toEqual([
      ['flags', 'BOOL', [-1, 2]],
      ['ids', 'INT64', [-1, 2]],
    ]);
    const req = (flags: boolean[], ids: bigint[]): NamedTensors => ({
      flags: { name: 'flags', datatype: 'BOOL', shape: [flags.length / 2, 2], data: flags },
      ids: { name: 'ids', datatype: 'INT64', shape: [ids.length / 2, 2], data: BigInt64Array.from(ids) },
    });
    const a = req([true, false], [2n ** 60n, -5n]);
    const b = req([false, false, true, true], [1n, 2n, 3n, 4n]);
    const [oa, ob] = await m.processBatch([a, b]);
    expect(oa!.not_flags!.data).toEqual([false, true]);
    expect(ob!.not_flags!.data).toEqual([true, true, false, false]);
    expect(Array.from(oa!.same_ids!.data as BigInt64Array)).toEqual([2n ** 60n, -5n]);
    expect(ob!.same_ids!.shape).toEqual([2, 2]);
    expect(await m.process(a)).toEqual(oa);
    await m.unload();
  });
});

describe('createModel', () => {
  it('builds the adapter named in the config, unloaded', () => {
    const onnx = createModel({ name: 'a', adapter: 'onnx', path: MODEL, executionProvider: 'cpu' });
    expect(onnx).toBeInstanceOf(OnnxModel);
    expect(onnx.status).toBe('initialized');
    expect(onnx.describe().executionProviders).toBe('cpu');
    expect(createModel({ name: 'b', adapter: 'tfjs', path: join(ROOT, 'models', 'mnist-tfjs') })).toBeInstanceOf(
      TfjsModel,
    );
  });

  it('rejects an unknown adapter', async () => {
    await expectWhaleError(
      () => createModel({ name: 'c', adapter: 'torch' as never, path: MODEL }),
      'ERR_INVALID_ARG',
      'adapter',
    );
  });
});
