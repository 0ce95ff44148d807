/**
 * The native scheduler engine against the plain-TS reference: the same
 * decision stream (dispatch order, batch compositions, expiries, next wake-up)
 * on seeded random workloads, plus the documented rules checked directly on
 * both engines: strict priorities, EDF, weighted fair shares, preferred sizes.
 */
import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { seededRandom } from '../src/core/base/random.js';
import {
  createSchedulerEngine,
  OP_BATCH,
  OP_EXPIRED,
  type EngineKind,
  type SchedulerEngine,
} from '../src/core/processing/scheduler-engine.js';

const KINDS: EngineKind[] = ['native', 'reference'];

const rng = seededRandom;

interface Decisions {
  batches: { model: number; ids: number[] }[];
  expired: number[];
  wake: number;
}

function poll(e: SchedulerEngine, nowUs: number, capacity = 4096): Decisions {
  const out = new Uint32Array(capacity);
  const meta = new Float64Array(2);
  const d: Decisions = { batches: [], expired: [], wake: Infinity };
  do {
    const words = e.poll(nowUs, out, meta);
    for (let i = 0; i < words;) {
      if (out[i] === OP_EXPIRED) {
        d.expired.push(out[i + 1]!);
        i += 2;
      } else {
        expect(out[i]).toBe(OP_BATCH);
        const n = out[i + 2]!;
        d.batches.push({ model: out[i + 1]!, ids: [...out.subarray(i + 3, i + 3 + n)] });
        i += 3 + n;
      }
    }
  } while (meta[1] === 1);
  d.wake = meta[0]!;
  return d;
}

function submit(e: SchedulerEngine, recs: number[][]): number[] {
  const records = Float64Array.from(recs.flat());
  const status = new Uint8Array(recs.length);
  e.submit(records, recs.length, status);
  return [...status];
}

/** Runs one random workload on an engine and returns everything it said. */
function workload(kind: EngineKind, seed: number, steps: number): unknown[] {
  const r = rng(seed);
  const e = createSchedulerEngine(kind, 3);
  const log: unknown[] = [];
  for (let t = 0; t < 5; t++) e.setTenant(t, [1, 2, 0.5, 3, 1][t]!);
  const models = new Set<number>();
  const add = (id: number) => {
    const max = 1 + Math.floor(r() * 8);
    const preferred = r() < 0.5 ? [] : [1 + Math.floor(r() * max), max];
    e.addModel(id, {
      maxBatchSize: max,
      preferredBatchSizes: preferred,
      maxQueueDelayUs: Math.floor(r() * 500),
      maxQueueSize: 4 + Math.floor(r() * 40),
      instances: 1 + Math.floor(r() * 2),
      dispatchWhenIdle: r() < 0.5,
    });
    models.add(id);
  };
  for (let m = 0; m < 3; m++) add(m);
  let nextModel = 3;
  const free: number[] = [];
  let nextId = 0;
  const queued = new Set<number>();
  const running: number[] = [];
  let now = 0;
  for (let s = 0; s < steps; s++) {
    const op = r();
    if (op < 0.45) {
      const recs: number[][] = [];
      const ids: number[] = [];
      for (let k = 1 + Math.floor(r() * 6); k > 0; k--) {
        const id = free.pop() ?? nextId++;
        const model = r() < 0.05 ? 99 : Math.floor(r() * nextModel);
        const deadline = r() < 0.6 ? now + Math.floor(r() * 3000) : Infinity;
        recs.push([id, model, Math.floor(r() * 5), Math.floor(r() * 3), now, deadline]);
        ids.push(id);
      }
      const st = submit(e, recs);
      st.forEach((x, i) => (x === 0 ? queued.add(ids[i]!) : free.push(ids[i]!)));
      log.push(['submit', st]);
    } else if (op < 0.55 && queued.size > 0) {
      const ids = [...queued];
      const id = ids[Math.floor(r() * ids.length)]!;
      const ok = e.cancel(id);
      if (ok) {
        queued.delete(id);
        free.push(id);
      }
      log.push(['cancel', id, ok]);
    } else if (op < 0.7 && running.length > 0) {
      const m = running.splice(Math.floor(r() * running.length), 1)[0]!;
      e.complete(m);
      log.push(['complete', m]);
    } else if (op < 0.72) {
      const victim = [...models][Math.floor(r() * models.size)];
      if (victim !== undefined) {
        const ids = [...e.removeModel(victim)];
        models.delete(victim);
        for (const id of ids) {
          queued.delete(id);
          free.push(id);
        }
        log.push(['remove', victim, ids]);
        add(nextModel++);
      }
    } else {
      now += Math.floor(r() * 400);
      const d = poll(e, now, 16 + Math.floor(r() * 48));
      for (const id of d.expired) {
        queued.delete(id);
        free.push(id);
      }
      for (const b of d.batches) {
        running.push(b.model);
        for (const id of b.ids) {
          queued.delete(id);
          free.push(id);
        }
      }
      log.push(['poll', now, d]);
    }
  }
  return log;
}

describe('scheduler engine: native vs reference', () => {
  it.each([1, 2, 3, 4, 5, 6])('random workload (seed %i) gives the same decisions', (seed) => {
    const native = workload('native', seed, 3000);
    const reference = workload('reference', seed, 3000);
    expect(native.length).toBe(3000);
    const polls = native.filter((x) => (x as unknown[])[0] === 'poll') as [string, number, Decisions][];
    expect(polls.some(([, , d]) => d.batches.length > 0 && d.expired.length > 0)).toBe(true);
    expect(native).toEqual(reference);
  });
});

describe.each(KINDS)('scheduler engine rules (%s)', (kind) => {
  it('serves priority classes strictly, EDF inside a tenant, then submission order', () => {
    const e = createSchedulerEngine(kind, 3);
    e.addModel(0, { maxBatchSize: 6, maxQueueDelayUs: 0, maxQueueSize: 100, instances: 1 });
    submit(e, [
      [0, 0, 0, 2, 0, Infinity],
      [1, 0, 0, 1, 0, 900],
      [2, 0, 0, 1, 0, 500],
      [3, 0, 0, 1, 0, Infinity],
      [4, 0, 0, 0, 0, Infinity],
      [5, 0, 0, 1, 0, 500],
    ]);
    expect(poll(e, 1).batches).toEqual([{ model: 0, ids: [4, 2, 5, 1, 3, 0] }]);
  });

  it('gives tenants shares proportional to their weights', () => {
    const e = createSchedulerEngine(kind, 1);
    const weights = [1, 2, 5];
    weights.forEach((w, t) => e.setTenant(t, w));
    e.addModel(0, { maxBatchSize: 8, maxQueueDelayUs: 0, maxQueueSize: 10_000, instances: 1 });
    const recs: number[][] = [];
    for (let i = 0; i < 3000; i++) recs.push([i, 0, i % 3, 0, 0, Infinity]);
    submit(e, recs);
    const served = [0, 0, 0];
    for (let b = 0; b < 100; b++) {
      const d = poll(e, 0);
      for (const id of d.batches[0]!.ids) served[id % 3]!++;
      e.complete(0);
    }
    weights.forEach((w, t) => expect(Math.abs(served[t]! - (800 * w) / 8)).toBeLessThanOrEqual(1));
  });

  it('dispatches the largest reachable preferred size at once, the rest after the queue delay', () => {
    const e = createSchedulerEngine(kind, 1);
    e.addModel(0, {
      maxBatchSize: 16,
      preferredBatchSizes: [4, 8],
      maxQueueDelayUs: 1000,
      maxQueueSize: 100,
      instances: 4,
    });
    submit(
      e,
      Array.from({ length: 14 }, (_, i) => [i, 0, 0, 0, 100, Infinity]),
    );
    const d = poll(e, 100);
    expect(d.batches.map((b) => b.ids.length)).toEqual([8, 4]);
    expect(d.wake).toBe(1100);
    expect(poll(e, 1099).batches).toEqual([]);
    expect(poll(e, 1100).batches).toEqual([{ model: 0, ids: [12, 13] }]);
  });

  it('dispatchWhenIdle: a lone request on an idle model goes at once; arrivals during a batch go together on completion', () => {
    const e = createSchedulerEngine(kind, 1);
    e.addModel(0, {
      maxBatchSize: 4,
      preferredBatchSizes: [4],
      maxQueueDelayUs: 1_000_000,
      maxQueueSize: 100,
      instances: 1,
      dispatchWhenIdle: true,
    });
    submit(e, [[0, 0, 0, 0, 0, Infinity]]);
    expect(poll(e, 0).batches).toEqual([{ model: 0, ids: [0] }]);
    submit(
      e,
      [1, 2, 3, 4, 5].map((id) => [id, 0, 0, 0, 10, Infinity]),
    );
    expect(poll(e, 20)).toEqual({ batches: [], expired: [], wake: Infinity });
    e.complete(0);
    expect(poll(e, 30).batches).toEqual([{ model: 0, ids: [1, 2, 3, 4] }]);
    e.complete(0);
    expect(poll(e, 31).batches).toEqual([{ model: 0, ids: [5] }]);
  });

  it('dispatchWhenIdle with 2 instances: only a model with no batch running skips the wait; deadlines still expire', () => {
    const e = createSchedulerEngine(kind, 1);
    e.addModel(0, {
      maxBatchSize: 8,
      preferredBatchSizes: [4],
      maxQueueDelayUs: 1000,
      maxQueueSize: 100,
      instances: 2,
      dispatchWhenIdle: true,
    });
    submit(e, [[0, 0, 0, 0, 0, Infinity]]);
    expect(poll(e, 0).batches).toEqual([{ model: 0, ids: [0] }]);
    submit(e, [
      [1, 0, 0, 0, 10, 200],
      [2, 0, 0, 0, 10, Infinity],
    ]);
    expect(poll(e, 10)).toEqual({ batches: [], expired: [], wake: 200 });
    expect(poll(e, 200)).toEqual({ batches: [], expired: [1], wake: 1010 });
    expect(poll(e, 1010).batches).toEqual([{ model: 0, ids: [2] }]);
    submit(e, [[3, 0, 0, 0, 1020, Infinity]]);
    e.complete(0);
    expect(poll(e, 1030).batches).toEqual([]);
    e.complete(0);
    expect(poll(e, 1040).batches).toEqual([{ model: 0, ids: [3] }]);
  });

  it('expires requests at their deadline without running them and rejects a full queue', () => {
    const e = createSchedulerEngine(kind, 1);
    e.addModel(0, { maxBatchSize: 4, maxQueueDelayUs: 5000, maxQueueSize: 2, instances: 1 });
    expect(
      submit(e, [
        [0, 0, 0, 0, 0, 300],
        [1, 0, 0, 0, 0, Infinity],
        [2, 0, 0, 0, 0, Infinity],
        [3, 7, 0, 0, 0, Infinity],
      ]),
    ).toEqual([0, 0, 1, 2]);
    expect(poll(e, 0).wake).toBe(300);
    expect(poll(e, 300)).toEqual({ batches: [], expired: [0], wake: 5000 });
    expect(poll(e, 5000).batches).toEqual([{ model: 0, ids: [1] }]);
  });

  it('rejects bad arguments with a typed error', () => {
    const e = createSchedulerEngine(kind, 2);
    e.addModel(0, { maxBatchSize: 4, maxQueueDelayUs: 0, maxQueueSize: 2, instances: 1 });
    expect(() => submit(e, [[0, 0, 0, 2, 0, Infinity]])).toThrow(WhaleError);
    expect(() => e.setTenant(0, 0)).toThrow(/weight/);
    expect(() => e.complete(0)).toThrow(/no batch running/);
    expect(() =>
      e.addModel(1, { maxBatchSize: 4, preferredBatchSizes: [5], maxQueueDelayUs: 0, maxQueueSize: 2, instances: 1 }),
    ).toThrow(/preferredBatchSizes/);
    const notBoolean = {
      maxBatchSize: 4,
      maxQueueDelayUs: 0,
      maxQueueSize: 2,
      instances: 1,
      dispatchWhenIdle: 1 as unknown as boolean,
    };
    expect(() => e.addModel(2, notBoolean)).toThrow(/^dispatchWhenIdle: expected a boolean/);
  });
});
