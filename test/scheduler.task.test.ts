/**
 * TaskScheduler on both engines: results reach the right callers, and every
 * accepted request gets exactly one answer (a result or a typed error) under
 * overload, cancellation, deadlines, executor failures and hangs, model
 * removal and drain. A seeded workload through the whole class gives the same
 * batches and answers on the native engine as on the reference.
 */
import { getEventListeners } from 'node:events';

import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { seededRandom } from '../src/core/base/random.js';
import { TaskScheduler, type BatchingConfig, type TaskSchedulerOptions } from '../src/core/processing/index.js';
import type { EngineKind } from '../src/core/processing/scheduler-engine.js';

const KINDS: EngineKind[] = ['native', 'reference'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rng = seededRandom;

/** What a promise settled with: the value, or the error's code. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p };
  } catch (err) {
    expect(err).toBeInstanceOf(WhaleError);
    return { code: (err as WhaleError).code };
  }
}

function totalAnswered(s: TaskScheduler, model: string): number {
  const m = s.stats().models[model]!;
  return m.completed + m.failed + m.rejected + m.expired + m.cancelled + m.removed + m.shutdown;
}

const batching = (c: Partial<BatchingConfig> = {}): BatchingConfig => ({
  maxBatchSize: 8,
  maxQueueDelayUs: 1000,
  maxQueueSize: 1000,
  ...c,
});

describe.each(KINDS)('TaskScheduler (%s engine)', (engine) => {
  const make = (o: Partial<TaskSchedulerOptions> & Pick<TaskSchedulerOptions, 'executor'>) =>
    new TaskScheduler({ engine, models: { m: batching() }, ...o });
  /** One request at a time; each batch records its inputs and holds until release(). */
  const gated = () => {
    const seen: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = make({
      models: { m: batching({ maxBatchSize: 1, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => {
        seen.push(...inputs);
        await gate;
        return inputs;
      },
    });
    return { s, seen, release };
  };

  it('batches requests and gives each caller its own result', async () => {
    const sizes: number[] = [];
    const s = make({
      executor: async (model, inputs) => {
        sizes.push(inputs.length);
        return inputs.map((x) => `${model}:${(x as number) * 2}`);
      },
    });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.scheduleTask({ model: 'm', input: i })));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => `m:${i * 2}`));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...sizes)).toBe(8);
    const st = s.stats().models.m!;
    expect(st.completed).toBe(20);
    expect(st.meanBatchSize).toBeCloseTo(20 / st.batches);
  });

  it('answers ERR_OVERLOADED at once when the queue is full; the executor never sees rejected inputs', async () => {
    const seen: number[] = [];
    const s = make({
      models: { m: batching({ maxBatchSize: 4, maxQueueSize: 10, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => {
        seen.push(...(inputs as number[]));
        await sleep(2);
        return inputs;
      },
    });
    const out = await Promise.all(
      Array.from({ length: 200 }, (_, i) => outcome(s.scheduleTask({ model: 'm', input: i }))),
    );
    const ok = out.filter((o) => 'ok' in (o as object)).length;
    const rejected = out.filter((o) => (o as { code?: string }).code === 'ERR_OVERLOADED').length;
    expect(ok + rejected).toBe(200);
    expect(rejected).toBeGreaterThan(0);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(ok);
    expect(totalAnswered(s, 'm')).toBe(200);
  });

  it('cancels through AbortSignal: never run when not started, answered at once when running', async () => {
    const { s, seen, release } = gated();
    const running = new AbortController();
    const queued = new AbortController();
    const a = outcome(s.scheduleTask({ model: 'm', input: 'a', signal: running.signal }));
    const b = outcome(s.scheduleTask({ model: 'm', input: 'b', signal: queued.signal }));
    const c = outcome(s.scheduleTask({ model: 'm', input: 'c' }));
    const pre = outcome(s.scheduleTask({ model: 'm', input: 'pre', signal: AbortSignal.abort() }));
    await sleep(5);
    running.abort();
    queued.abort();
    expect(await a).toEqual({ code: 'ERR_CANCELLED' });
    expect(await b).toEqual({ code: 'ERR_CANCELLED' });
    expect(await pre).toEqual({ code: 'ERR_CANCELLED' });
    release();
    expect(await c).toEqual({ ok: 'c' });
    expect(seen).toEqual(['a', 'c']);
    expect(totalAnswered(s, 'm')).toBe(3);
  });

  it("one signal shared by many requests (a connection's): one listener, and aborting it cancels every one in flight", async () => {
    const { s, seen, release } = gated();
    const connection = new AbortController();
    const all = ['a', 'b', 'c', 'd'].map((x) =>
      outcome(s.scheduleTask({ model: 'm', input: x, signal: connection.signal })),
    );
    await sleep(5);
    expect(getEventListeners(connection.signal, 'abort')).toHaveLength(1);
    connection.abort();
    for (const o of await Promise.all(all)) expect(o).toEqual({ code: 'ERR_CANCELLED' });
    release();
    expect(seen).toEqual(['a']); // the one running when the connection went away; the queued ones never ran
    expect(totalAnswered(s, 'm')).toBe(4);
  });

  it('a signal per request: its listener is removed once its request is answered (at the next sweep)', async () => {
    const s = make({
      models: { m: batching({ maxBatchSize: 8, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => inputs,
    });
    const controllers = Array.from({ length: 600 }, () => new AbortController());
    const out = await Promise.all(
      controllers.map((c, i) => outcome(s.scheduleTask({ model: 'm', input: i, signal: c.signal }))),
    );
    out.forEach((o, i) => expect(o).toEqual({ ok: i }));
    // Sweeps ran (every 256 idle signals): the early ones hold no listener, so nothing keeps them.
    const kept = controllers.filter((c) => getEventListeners(c.signal, 'abort').length > 0).length;
    expect(getEventListeners(controllers[0]!.signal, 'abort')).toHaveLength(0);
    expect(kept).toBeLessThan(256);
    await s.drain(100); // a drain removes the rest
    expect(controllers.filter((c) => getEventListeners(c.signal, 'abort').length > 0)).toHaveLength(0);
  });

  it('fails exactly the batch whose executor throws, with a typed error', async () => {
    const s = make({
      models: { m: batching({ maxBatchSize: 2, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => {
        if (inputs.includes('poison')) throw new Error('boom');
        if (inputs.includes('typed')) throw new WhaleError('ERR_MODEL_NOT_READY', 'reloading');
        return inputs;
      },
    });
    const out = await Promise.all(
      ['a', 'poison', 'b', 'c', 'typed', 'd'].map((x) => outcome(s.scheduleTask({ model: 'm', input: x }))),
    );
    expect(out).toEqual([
      { code: 'ERR_EXECUTION_FAILED' },
      { code: 'ERR_EXECUTION_FAILED' },
      { ok: 'b' },
      { ok: 'c' },
      { code: 'ERR_MODEL_NOT_READY' },
      { code: 'ERR_MODEL_NOT_READY' },
    ]);
    const wrong = make({ executor: async () => [1] });
    expect(
      await outcome(
        Promise.all([wrong.scheduleTask({ model: 'm', input: 1 }), wrong.scheduleTask({ model: 'm', input: 2 })]),
      ),
    ).toEqual({ code: 'ERR_EXECUTION_FAILED' });
  });

  it('times out a hung batch, reports it, and keeps serving', async () => {
    const timedOut: string[] = [];
    const s = make({
      models: { m: batching({ maxBatchSize: 1, maxQueueDelayUs: 0, executionTimeoutMs: 30 }) },
      onBatchTimeout: (model) => timedOut.push(model),
      executor: (_m, inputs) => (inputs[0] === 'hang' ? new Promise(() => undefined) : Promise.resolve(inputs)),
    });
    const hung = outcome(s.scheduleTask({ model: 'm', input: 'hang' }));
    const next = outcome(s.scheduleTask({ model: 'm', input: 'next' }));
    expect(await hung).toEqual({ code: 'ERR_TIMEOUT' });
    expect(await next).toEqual({ ok: 'next' });
    expect(timedOut).toEqual(['m']);
  });

  it('expires a request whose deadline passes while it waits, without running it', async () => {
    const seen: unknown[] = [];
    const s = make({
      models: { m: batching({ maxBatchSize: 1, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => {
        seen.push(...inputs);
        await sleep(40);
        return inputs;
      },
    });
    const slow = outcome(s.scheduleTask({ model: 'm', input: 'slow' }));
    const late = outcome(s.scheduleTask({ model: 'm', input: 'late', timeoutMs: 5, priority: 1 }));
    expect(await late).toEqual({ code: 'ERR_DEADLINE_EXCEEDED' });
    expect(await slow).toEqual({ ok: 'slow' });
    expect(seen).toEqual(['slow']);
    expect(s.stats().models.m!.expired).toBe(1);
  });

  it('removes a model: its queued requests fail with ERR_MODEL_REMOVED, later ones ERR_MODEL_NOT_FOUND', async () => {
    const s = make({
      models: { m: batching({ maxBatchSize: 8, maxQueueDelayUs: 10_000_000 }) },
      executor: async (_m, i) => i,
    });
    const queued = Array.from({ length: 3 }, (_, i) => outcome(s.scheduleTask({ model: 'm', input: i })));
    s.removeModel('m');
    expect(await Promise.all(queued)).toEqual(Array(3).fill({ code: 'ERR_MODEL_REMOVED' }));
    expect(await outcome(s.scheduleTask({ model: 'm', input: 0 }))).toEqual({ code: 'ERR_MODEL_NOT_FOUND' });
  });

  it('drains: refuses new work, finishes what it can within the grace period, fails the rest', async () => {
    let calls = 0;
    const s = make({
      models: { m: batching({ maxBatchSize: 2, maxQueueDelayUs: 0 }) },
      executor: async (_m, inputs) => (++calls === 1 ? inputs : new Promise(() => undefined)),
    });
    const reqs = Array.from({ length: 6 }, (_, i) => outcome(s.scheduleTask({ model: 'm', input: i })));
    await sleep(0);
    const drained = s.drain(50);
    expect(await outcome(s.scheduleTask({ model: 'm', input: 'late' }))).toEqual({ code: 'ERR_SHUTTING_DOWN' });
    await drained;
    const out = await Promise.all(reqs);
    expect(out.slice(0, 2)).toEqual([{ ok: 0 }, { ok: 1 }]);
    expect(out.slice(2)).toEqual(Array(4).fill({ code: 'ERR_SHUTTING_DOWN' }));
    expect(totalAnswered(s, 'm')).toBe(6);
    expect(s.drain(50)).toBe(drained);
  });

  it('rejects bad requests and options with typed errors naming the field', async () => {
    const s = make({ executor: async (_m, i) => i });
    const field = async (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: WhaleError) => `${e.code} ${e.field}`,
      );
    expect(await field(s.scheduleTask({ model: 'm', input: 1, priority: 3 }))).toBe('ERR_INVALID_ARG priority');
    expect(await field(s.scheduleTask({ model: 'm', input: 1, timeoutMs: -1 }))).toBe('ERR_INVALID_ARG timeoutMs');
    // A string priority is named as a string, not shown as if it were the number (hardening round 2, item 21).
    await expect(s.scheduleTask({ model: 'm', input: 1, priority: '1' as never })).rejects.toThrow(
      'got "1" (a string)',
    );
    expect(await field(s.scheduleTask({ model: 'm', input: 1, tenant: '' }))).toBe('ERR_INVALID_ARG tenant');
    expect(await field(s.scheduleTask({ model: 'nope', input: 1 }))).toBe('ERR_MODEL_NOT_FOUND model');
    expect(() => s.addModel('x', batching({ maxBatchSize: 0 }))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'models.x.maxBatchSize' }),
    );
    expect(() => s.addModel('y', batching({ preferredBatchSizes: [9] }))).toThrow(
      expect.objectContaining({ field: 'models.y.preferredBatchSizes[0]' }),
    );
    expect(() => s.addModel('m', batching())).toThrow(expect.objectContaining({ code: 'ERR_CONFLICT' }));
    expect(() => new TaskScheduler({ engine, executor: async (_m, i) => i, tenants: { t: 0 } })).toThrow(
      expect.objectContaining({ field: 'tenants.t' }),
    );
  });

  it('dispatchWhenIdle: a lone request runs at once, a burst in one tick is one batch, arrivals during a batch run together after it', async () => {
    const batches: number[][] = [];
    const inflight: (() => void)[] = [];
    const s = make({
      models: {
        m: batching({
          maxBatchSize: 8,
          preferredBatchSizes: [8],
          maxQueueDelayUs: 3_600_000_000,
          dispatchWhenIdle: true,
        }),
      },
      executor: (_m, inputs) => {
        batches.push(inputs as number[]);
        return new Promise((resolve) => inflight.push(() => resolve(inputs)));
      },
    });
    const answers = [s.scheduleTask({ model: 'm', input: 0 })];
    await sleep(0);
    expect(batches).toEqual([[0]]); // Triton's rule alone would hold it for the hour-long delay
    for (let i = 1; i <= 5; i++) {
      answers.push(s.scheduleTask({ model: 'm', input: i }));
      await sleep(0);
    }
    expect(batches).toEqual([[0]]);
    inflight.shift()!();
    await sleep(0);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5]]);
    inflight.shift()!();
    await Promise.all(answers);
    for (let i = 6; i < 16; i++) answers.push(s.scheduleTask({ model: 'm', input: i }));
    await sleep(0);
    expect(batches.slice(2)).toEqual([[6, 7, 8, 9, 10, 11, 12, 13]]);
    inflight.shift()!();
    await sleep(0);
    expect(batches.slice(3)).toEqual([[14, 15]]);
    inflight.shift()!();
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(() => s.addModel('w', batching({ dispatchWhenIdle: 'yes' as unknown as boolean }))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'models.w.dispatchWhenIdle' }),
    );
  });

  it('answers every request exactly once under mixed overload, cancellation, failures, hangs and drain', async () => {
    const r = rng(7);
    const seen = new Map<number, number>();
    const s = new TaskScheduler({
      engine,
      tenants: { a: 1, b: 3 },
      models: {
        m: batching({
          maxBatchSize: 4,
          preferredBatchSizes: [2, 4],
          maxQueueDelayUs: 500,
          maxQueueSize: 40,
          instances: 2,
          executionTimeoutMs: 20,
        }),
      },
      executor: async (_m, inputs) => {
        for (const x of inputs as number[]) seen.set(x, (seen.get(x) ?? 0) + 1);
        if ((inputs as number[]).some((x) => x % 23 === 5)) throw new Error('model failure');
        if ((inputs as number[]).some((x) => x % 41 === 7)) return new Promise(() => undefined);
        await sleep(1);
        return inputs;
      },
    });
    const aborted = new Set<number>();
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      const ac = new AbortController();
      all.push(
        outcome(
          s.scheduleTask({
            model: 'm',
            input: i,
            tenant: r() < 0.5 ? 'a' : 'b',
            priority: Math.floor(r() * 3),
            timeoutMs: r() < 0.3 ? r() * 20 : undefined,
            signal: ac.signal,
          }),
        ),
      );
      if (r() < 0.1) setTimeout(() => (aborted.add(i), ac.abort()), r() * 10);
      if (i % 50 === 49) await sleep(2);
    }
    await sleep(60); // past the execution timeout of every hung batch
    await s.drain(30);
    const out = (await Promise.all(all)) as { ok?: unknown; code?: string }[];
    expect(totalAnswered(s, 'm')).toBe(600);
    for (const [x, n] of seen) expect([x, n]).toEqual([x, 1]);
    out.forEach((o, i) => {
      if ('ok' in o) expect(o.ok).toBe(i);
      else
        expect([
          'ERR_OVERLOADED',
          'ERR_CANCELLED',
          'ERR_DEADLINE_EXCEEDED',
          'ERR_EXECUTION_FAILED',
          'ERR_TIMEOUT',
          'ERR_SHUTTING_DOWN',
        ]).toContain(o.code);
      if (o.code === 'ERR_OVERLOADED' || o.code === 'ERR_DEADLINE_EXCEEDED') expect(seen.has(i)).toBe(false);
    });
    const codes = new Set(out.map((o) => o.code ?? 'ok'));
    for (const c of ['ok', 'ERR_OVERLOADED', 'ERR_EXECUTION_FAILED', 'ERR_TIMEOUT']) expect(codes).toContain(c);
  });
});

/** Drives a TaskScheduler with a manual clock; returns its batches and every answer, in order. */
async function scripted(engine: EngineKind, seed: number): Promise<unknown[]> {
  const r = rng(seed);
  let now = 0;
  const log: unknown[] = [];
  const inflight: { inputs: unknown[]; resolve: (v: unknown[]) => void; reject: (e: Error) => void }[] = [];
  const s = new TaskScheduler({
    engine,
    clock: () => now,
    autoWake: false,
    tenants: { a: 1, b: 2, c: 4 },
    models: {
      x: batching({ maxBatchSize: 6, preferredBatchSizes: [3], maxQueueDelayUs: 2000, maxQueueSize: 30, instances: 2 }),
      y: batching({ maxBatchSize: 2, maxQueueDelayUs: 0, maxQueueSize: 10 }),
      z: batching({
        maxBatchSize: 4,
        preferredBatchSizes: [4],
        maxQueueDelayUs: 3000,
        maxQueueSize: 20,
        instances: 2,
        dispatchWhenIdle: true,
      }),
    },
    executor: (model, inputs) => {
      log.push(['batch', model, inputs]);
      return new Promise((resolve, reject) => inflight.push({ inputs, resolve, reject }));
    },
  });
  const answers: Promise<void>[] = [];
  for (let step = 0; step < 400; step++) {
    const op = r();
    if (op < 0.5) {
      const id = step;
      const ac = new AbortController();
      answers.push(
        outcome(
          s.scheduleTask({
            model: ['x', 'x', 'y', 'z', 'z'][Math.floor(r() * 5)]!,
            input: id,
            tenant: ['a', 'b', 'c'][Math.floor(r() * 3)],
            priority: Math.floor(r() * 3),
            timeoutMs: r() < 0.4 ? r() * 8 : undefined,
            signal: ac.signal,
          }),
        ).then((o) => {
          log.push(['answer', id, o]);
        }),
      );
      if (r() < 0.1) ac.abort();
    } else if (op < 0.75 && inflight.length > 0) {
      const b = inflight.splice(Math.floor(r() * inflight.length), 1)[0]!;
      if (r() < 0.15) b.reject(new Error('fail'));
      else b.resolve(b.inputs);
    } else {
      now += r() * 3;
    }
    await sleep(0);
    s.tick();
    await sleep(0);
  }
  for (const b of inflight.splice(0)) b.resolve(b.inputs);
  await s.drain(0);
  await Promise.all(answers);
  return log;
}

describe('TaskScheduler: native engine vs reference', () => {
  it.each([11, 12, 13])('same batches and answers on a scripted workload (seed %i)', async (seed) => {
    const native = await scripted('native', seed);
    const reference = await scripted('reference', seed);
    expect(native.filter((x) => (x as unknown[])[0] === 'batch').length).toBeGreaterThan(20);
    expect(native).toEqual(reference);
  });
});
