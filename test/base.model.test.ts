import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { BaseModel, MODEL_TRANSITIONS, canTransition, defineModel, type ModelStatus } from '../src/core/base/model.js';
import { BaseProcessor } from '../src/core/base/processor.js';
import { ResourceLease } from '../src/core/base/resource-aware.js';
import type { NamedTensors, Tensor, TensorSpec } from '../src/core/base/tensor.js';
import { expectWhaleError } from './helpers.js';

const X: TensorSpec = { name: 'x', datatype: 'FP32', shape: [-1, 2] };
const Y: TensorSpec = { name: 'y', datatype: 'FP32', shape: [-1, 2] };

function rows(values: number[][]): NamedTensors {
  return { x: { name: 'x', datatype: 'FP32', shape: [values.length, 2], data: Float32Array.from(values.flat()) } };
}

function doubled(input: NamedTensors): NamedTensors {
  const x = input.x!;
  return {
    y: {
      name: 'y',
      datatype: 'FP32',
      shape: [...x.shape],
      data: Float32Array.from(x.data as Float32Array, (v) => 2 * v),
    },
  };
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A class-based model with a counter as its saved state and a switch to fail loading. */
class Counter extends BaseModel {
  runs = 0;
  unloads = 0;
  failNextLoad = false;
  gate: Promise<void> | undefined;
  loadGate: Promise<void> | undefined;
  constructor(name = 'counter', extra: Partial<ConstructorParameters<typeof BaseModel>[0]> = {}) {
    super({ name, inputs: [X], outputs: [Y], ...extra });
  }
  protected override async loadModel(): Promise<void> {
    if (this.loadGate) await this.loadGate;
    if (this.failNextLoad) {
      this.failNextLoad = false;
      throw new Error('weights file truncated');
    }
  }
  protected override async unloadModel(): Promise<void> {
    this.unloads++;
  }
  protected override async run(input: NamedTensors): Promise<NamedTensors> {
    this.runs++;
    if (this.gate) await this.gate;
    return doubled(input);
  }
  protected override exportState(): unknown {
    return { runs: this.runs };
  }
  protected override importState(data: unknown): void {
    this.runs = (data as { runs: number }).runs;
  }
}

describe('model lifecycle', () => {
  it('initialized → loading → ready → draining → stopped, and loads again after a stop', async () => {
    const m = new Counter();
    expect(m.status).toBe('initialized');
    expect(m.platform).toBe('custom');
    expect(m.version).toBe('1');
    const loading = m.load();
    expect(m.status).toBe('loading');
    await loading;
    expect(m.status).toBe('ready');
    const out = await m.process(rows([[1, 2]]));
    expect(Array.from(out.y!.data as Float32Array)).toEqual([2, 4]);
    await m.unload();
    expect(m.status).toBe('stopped');
    expect(m.unloads).toBe(1);
    await m.unload(); // idempotent
    expect(m.unloads).toBe(1);
    await m.load();
    expect(m.status).toBe('ready');
  });

  it('illegal moves throw ERR_INVALID_STATE and leave the status unchanged', async () => {
    const m = new Counter();
    const gate = deferred();
    m.loadGate = gate.promise;
    const loading = m.load();
    await expectWhaleError(() => m.load(), 'ERR_INVALID_STATE', 'status');
    await expectWhaleError(() => m.unload(), 'ERR_INVALID_STATE', 'status');
    expect(m.status).toBe('loading');
    gate.resolve();
    await loading;
    const e = await expectWhaleError(() => m.load(), 'ERR_INVALID_STATE', 'status');
    expect(e.message).toContain('ready');
    expect(m.status).toBe('ready');
    await m.unload();
    await expectWhaleError(() => m.markFailed(new Error('late')), 'ERR_INVALID_STATE', 'status');
    expect(m.status).toBe('stopped');
  });

  it('the transition table is what canTransition and the model enforce', () => {
    const all = Object.keys(MODEL_TRANSITIONS) as ModelStatus[];
    expect(all.sort()).toEqual(['draining', 'failed', 'initialized', 'loading', 'ready', 'stopped']);
    expect(canTransition('initialized', 'ready')).toBe(false);
    expect(canTransition('ready', 'loading')).toBe(false);
    expect(canTransition('stopped', 'ready')).toBe(false);
    expect(canTransition('failed', 'loading')).toBe(true);
    expect(canTransition('draining', 'stopped')).toBe(true);
  });

  it('a load that throws leaves the model failed with a typed error; a later load recovers', async () => {
    const m = new Counter();
    m.failNextLoad = true;
    const e = await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD');
    expect(e.message).toContain('weights file truncated');
    expect(m.status).toBe('failed');
    expect(m.describe().lastError).toContain('truncated');
    await expectWhaleError(() => m.process(rows([[1, 1]])), 'ERR_MODEL_NOT_READY', 'model');
    await m.load();
    expect(m.status).toBe('ready');
    expect(m.describe().lastError).toBeUndefined();
  });

  it('refuses requests unless ready', async () => {
    const m = new Counter();
    const e = await expectWhaleError(() => m.process(rows([[1, 1]])), 'ERR_MODEL_NOT_READY', 'model');
    expect(e.message).toContain('initialized');
    await expectWhaleError(() => m.processBatch([rows([[1, 1]])]), 'ERR_MODEL_NOT_READY', 'model');
  });

  it('unload drains: calls in flight finish, new ones are refused', async () => {
    const m = new Counter();
    await m.load();
    const gate = deferred();
    m.gate = gate.promise;
    const inFlight = m.process(rows([[3, 4]]));
    await Promise.resolve();
    const unloading = m.unload();
    expect(m.status).toBe('draining');
    expect(m.describe().inFlight).toBe(1);
    await expectWhaleError(() => m.process(rows([[1, 1]])), 'ERR_MODEL_NOT_READY', 'model');
    expect(m.unload()).toBe(unloading);
    gate.resolve();
    const out = await inFlight;
    expect(Array.from(out.y!.data as Float32Array)).toEqual([6, 8]);
    await unloading;
    expect(m.status).toBe('stopped');
  });

  it('a drain gives up after drainTimeoutMs; markFailed ends it at once', async () => {
    const slow = new Counter('slow', { drainTimeoutMs: 30 });
    await slow.load();
    slow.gate = new Promise(() => undefined); // never settles
    void slow.process(rows([[1, 1]]));
    await Promise.resolve();
    const t0 = Date.now();
    await slow.unload();
    expect(slow.status).toBe('stopped');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);

    const hung = new Counter('hung', { drainTimeoutMs: 60_000 });
    await hung.load();
    hung.gate = new Promise(() => undefined);
    void hung.process(rows([[1, 1]]));
    await Promise.resolve();
    const unloading = hung.unload();
    hung.markFailed(new WhaleError('ERR_TIMEOUT', 'did not answer'));
    await unloading;
    expect(hung.status).toBe('stopped');
    expect(hung.describe().lastError).toBe('did not answer');
  });

  it('a call left hanging by an earlier load does not hold up the next drain', async () => {
    const m = new Counter('reloaded', { drainTimeoutMs: 60_000 });
    await m.load();
    m.gate = new Promise(() => undefined); // this call never settles
    void m.process(rows([[1, 1]]));
    await Promise.resolve();
    m.markFailed(new WhaleError('ERR_TIMEOUT', 'hung'));
    await m.unload();
    m.gate = undefined;
    await m.load();
    expect(await m.process(rows([[2, 3]]))).toEqual(doubled(rows([[2, 3]])));
    await m.unload(); // would wait the full 60 s drain if the hung call were still counted
    expect(m.status).toBe('stopped');
  }, 10_000);
});

describe('processing', () => {
  it('validates inputs before the model runs', async () => {
    const m = new Counter();
    await m.load();
    const wide: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) };
    await expectWhaleError(() => m.process({ x: wide }), 'ERR_SHAPE_MISMATCH', 'inputs.x.shape');
    await expectWhaleError(
      () => m.processBatch([rows([[1, 1]]), { x: wide }]),
      'ERR_SHAPE_MISMATCH',
      'inputs[1].x.shape',
    );
    await expectWhaleError(() => m.processBatch([]), 'ERR_INVALID_ARG', 'inputs');
    expect(m.runs).toBe(0);
  });

  it('a batch is one run over the requests stacked on dim 0, equal to running them one by one', async () => {
    const m = new Counter();
    await m.load();
    const reqs = [
      rows([[1, 2]]),
      rows([
        [3, 4],
        [5, 6],
      ]),
      rows([[7, 8]]),
    ];
    const batched = await m.processBatch(reqs);
    expect(m.runs).toBe(1);
    const single = [];
    for (const r of reqs) single.push(await m.process(r));
    expect(batched).toEqual(single);
    expect(batched[1]!.y!.shape).toEqual([2, 2]);
    const d = m.describe();
    expect(d).toMatchObject({ status: 'ready', batches: 1, requests: 6, failures: 0 });
  });

  it('runs requests one by one when the model declares no batch dimension', async () => {
    let runs = 0;
    const m = defineModel({
      name: 'fixed',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2] }],
      process: (input) => {
        runs++;
        return doubled(input);
      },
    });
    await m.load();
    const out = await m.processBatch([rows([[1, 1]]), rows([[2, 2]])]);
    expect(runs).toBe(2);
    expect(Array.from(out[1]!.y!.data as Float32Array)).toEqual([4, 4]);
  });

  it('an error inside the model becomes ERR_MODEL_RUN with its cause and is counted', async () => {
    const boom = new Error('CUDA illegal address');
    const m = defineModel({ name: 'boom', inputs: [X], outputs: [Y], process: () => Promise.reject(boom) });
    await m.load();
    const e = await expectWhaleError(() => m.process(rows([[1, 1]])), 'ERR_MODEL_RUN');
    expect(e.cause).toBe(boom);
    expect(e.message).toContain("model 'boom'");
    expect(m.describe().failures).toBe(1);
    expect(m.status).toBe('ready'); // the host decides whether to take it out of service
  });

  it('outputs that break the declared signature are ERR_MODEL_RUN naming the output', async () => {
    const missing = defineModel({ name: 'm1', inputs: [X], outputs: [Y], process: () => ({}) });
    await missing.load();
    await expectWhaleError(() => missing.process(rows([[1, 1]])), 'ERR_MODEL_RUN', 'outputs.y');
    const short = defineModel({
      name: 'm2',
      inputs: [X],
      outputs: [Y],
      process: () => ({ y: { name: 'y', datatype: 'FP32', shape: [1, 2], data: new Float32Array(1) } }),
    });
    await short.load();
    await expectWhaleError(() => short.process(rows([[1, 1]])), 'ERR_MODEL_RUN', 'outputs.y.data');
    const rowsLost = defineModel({
      name: 'm3',
      inputs: [X],
      outputs: [Y],
      process: () => ({ y: { name: 'y', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) } }),
    });
    await rowsLost.load();
    await expectWhaleError(
      () => rowsLost.processBatch([rows([[1, 1]]), rows([[2, 2]])]),
      'ERR_MODEL_RUN',
      'outputs.y.shape',
    );
  });
});

describe('defineModel', () => {
  it('uses a custom processBatch and checks it returns one result per request', async () => {
    const seen: number[] = [];
    const m = defineModel({
      name: 'custom-batch',
      version: '2024.1',
      inputs: [X],
      outputs: [Y],
      process: doubled,
      processBatch: (inputs) => {
        seen.push(inputs.length);
        return inputs.map(doubled);
      },
    });
    expect(m.version).toBe('2024.1');
    await m.load();
    const out = await m.processBatch([rows([[1, 0]]), rows([[0, 1]])]);
    expect(seen).toEqual([2]);
    expect(Array.from(out[1]!.y!.data as Float32Array)).toEqual([0, 2]);
    const bad = defineModel({
      name: 'bad-batch',
      inputs: [X],
      outputs: [Y],
      process: doubled,
      processBatch: (inputs) => inputs.slice(1).map(doubled),
    });
    await bad.load();
    const e = await expectWhaleError(() => bad.processBatch([rows([[1, 0]]), rows([[0, 1]])]), 'ERR_MODEL_RUN');
    expect(e.message).toContain('1 results for 2 requests');
  });

  it('calls load and unload hooks', async () => {
    const calls: string[] = [];
    const m = defineModel({
      name: 'hooks',
      inputs: [X],
      outputs: [Y],
      process: doubled,
      load: () => void calls.push('load'),
      unload: () => void calls.push('unload'),
    });
    await m.load();
    await m.unload();
    expect(calls).toEqual(['load', 'unload']);
  });

  it('rejects bad definitions with the field named', async () => {
    await expectWhaleError(
      () => defineModel({ name: 'has space', inputs: [X], outputs: [Y], process: doubled }),
      'ERR_INVALID_ARG',
      'name',
    );
    await expectWhaleError(
      () => defineModel({ name: 'v', version: '', inputs: [X], outputs: [Y], process: doubled }),
      'ERR_INVALID_ARG',
      'version',
    );
    await expectWhaleError(
      () => defineModel({ name: 'p', inputs: [X], outputs: [Y] } as never),
      'ERR_INVALID_ARG',
      'process',
    );
    await expectWhaleError(
      () => defineModel({ name: 'i', outputs: [Y], process: doubled } as never),
      'ERR_INVALID_ARG',
      'inputs',
    );
    await expectWhaleError(
      () =>
        defineModel({
          name: 's',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-3] }],
          outputs: [Y],
          process: doubled,
        }),
      'ERR_INVALID_ARG',
      'inputs[0].shape',
    );
    await expectWhaleError(
      () => defineModel({ name: 'd', inputs: [X], outputs: [Y], process: doubled, drainTimeoutMs: -1 }),
      'ERR_INVALID_ARG',
      'drainTimeoutMs',
    );
  });
});

describe('saveState / loadState', () => {
  it('round-trips counters and the model state, never the status', async () => {
    const a = new Counter();
    await a.load();
    await a.process(rows([[1, 1]]));
    await a.processBatch([rows([[1, 1]]), rows([[2, 2]])]);
    const state = JSON.parse(JSON.stringify(a.saveState()));
    expect(state).toMatchObject({
      name: 'counter',
      version: '1',
      status: 'ready',
      stats: { requests: 3, batches: 1 },
      data: { runs: 2 },
    });
    const b = new Counter();
    b.loadState(state);
    expect(b.runs).toBe(2);
    expect(b.status).toBe('initialized');
    expect(b.describe()).toMatchObject({ requests: 3, batches: 1 });
  });

  it('refuses a state from another model or a damaged one', async () => {
    const state = new Counter().saveState();
    await expectWhaleError(() => new Counter('other').loadState(state), 'ERR_INVALID_ARG', 'state.name');
    await expectWhaleError(
      () => new Counter('counter', { version: '2' }).loadState(state),
      'ERR_INVALID_ARG',
      'state.version',
    );
    await expectWhaleError(
      () => new Counter().loadState({ ...state, stats: { requests: -1, batches: 0, failures: 0 } }),
      'ERR_INVALID_ARG',
      'state.stats.requests',
    );
    await expectWhaleError(() => new Counter().loadState(null as never), 'ERR_INVALID_ARG', 'state');
  });
});

describe('resources and processors', () => {
  it('a model holds one resource grant, released on unload', async () => {
    const m = new Counter();
    expect(m.resourceStatus()).toEqual({ allocated: null, since: null });
    expect(m.allocateResources(2, 1 << 20, 0)).toEqual({ cpu: 2, memory: 1 << 20, gpu: 0 });
    expect(m.describe().resources).toMatchObject({ allocated: { cpu: 2, memory: 1 << 20, gpu: 0 } });
    await m.load();
    await m.unload();
    expect(m.resourceStatus().allocated).toBeNull();
  });

  it('ResourceLease validates amounts', async () => {
    const lease = new ResourceLease(() => 1234);
    await expectWhaleError(() => lease.allocateResources(-1, 0, 0), 'ERR_INVALID_ARG', 'cpu');
    await expectWhaleError(() => lease.allocateResources(1, Number.NaN, 0), 'ERR_INVALID_ARG', 'memory');
    await expectWhaleError(() => lease.allocateResources(1, 0, Infinity), 'ERR_INVALID_ARG', 'gpu');
    await expectWhaleError(() => lease.allocateResources(0, 10, 0), 'ERR_INVALID_ARG', 'cpu');
    lease.allocateResources(0, 10, 0.5);
    expect(lease.resourceStatus()).toEqual({ allocated: { cpu: 0, memory: 10, gpu: 0.5 }, since: 1234 });
    lease.releaseResources();
    expect(lease.resourceStatus()).toEqual({ allocated: null, since: null });
  });

  it('BaseProcessor records the time of every call, failures included', async () => {
    class Sleep extends BaseProcessor<number, number> {
      protected override async run(ms: number): Promise<number> {
        await new Promise((r) => setTimeout(r, ms));
        if (ms > 15) throw new Error('too slow');
        return ms;
      }
    }
    const p = new Sleep('sleep');
    expect(p.stats()).toEqual({ calls: 0, failures: 0, totalMs: 0, meanMs: 0, maxMs: 0, lastMs: 0 });
    expect(await p.process(5)).toBe(5);
    await expect(p.process(20)).rejects.toThrow('too slow');
    const s = p.stats();
    expect(s.calls).toBe(2);
    expect(s.failures).toBe(1);
    expect(s.lastMs).toBeGreaterThanOrEqual(19);
    expect(s.maxMs).toBe(s.lastMs);
    expect(s.totalMs).toBeGreaterThanOrEqual(24);
    expect(s.meanMs).toBeCloseTo(s.totalMs / 2, 6);
  });
});
