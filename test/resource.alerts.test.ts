// Resource thresholds (levels rules of the one alert engine) with a fake clock:
// fire only after the duration, resolve with hysteresis, no flapping,
// deduplicated events on `resource.alert` with their fields, nothing lost
// when the bus fails.
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { AlertManager, RESOURCE_ALERT_EVENT, type Alert } from '../src/core/monitoring/visualization/alert-manager.js';
import type { LevelsRule } from '../src/core/monitoring/visualization/alert-rules.js';
import type { SystemSample } from '../src/core/resource-management/monitor/system-sampler.js';
import { ResourceManager } from '../src/core/resource-management/resource-manager.js';

/** An engine with `rules`; `at(ms, values)` returns the alert changes that sample made. */
function levels(...rules: Omit<LevelsRule, 'kind'>[]) {
  const changes: Alert[] = [];
  const m = new AlertManager({
    rules: rules.map((r) => ({ kind: 'levels', ...r })),
    logger: silentLogger,
    onChange: (a) => changes.push(a),
  });
  const at = (ms: number, values: Record<string, number>): Alert[] => {
    changes.length = 0;
    m.observeAll(values, ms);
    return [...changes];
  };
  return { m, at };
}

describe('levels rules (resource thresholds)', () => {
  it('fire after the level held for forMs, escalate, and resolve only below the hysteresis band', () => {
    const { at: all } = levels({
      name: 'cpu',
      series: 'cpu.load',
      warning: 0.8,
      critical: 0.95,
      forMs: 3000,
      hysteresis: 0.1,
      resolveForMs: 2000,
    });
    const at = (ms: number, v: number) => all(ms, { 'cpu.load': v });
    expect(at(0, 0.85)).toEqual([]);
    expect(at(2999, 0.9)).toEqual([]); // not yet held 3 s
    expect(at(3000, 0.9)).toMatchObject([
      { rule: 'cpu', state: 'firing', severity: 'warning', threshold: 0.8, value: 0.9 },
    ]);
    expect(at(4000, 0.97)).toEqual([]);
    expect(at(7000, 0.97)).toMatchObject([{ state: 'firing', severity: 'critical' }]);
    expect(at(8000, 0.9)).toEqual([]); // inside the critical hysteresis band (0.85..0.95)
    expect(at(9000, 0.84)).toEqual([]); // below the band, but not for 2 s yet
    expect(at(11000, 0.84)).toMatchObject([{ state: 'firing', severity: 'warning' }]); // stepped down
    expect(at(12000, 0.75)).toEqual([]); // 0.75 > 0.8 - 0.1: still warning
    expect(at(13000, 0.65)).toEqual([]);
    expect(at(15000, 0.65)).toMatchObject([{ state: 'resolved', severity: 'warning' }]);
  });

  it('a value hovering at the threshold does not flap', () => {
    const { at } = levels({ name: 'mem', series: 'memory.usedFraction', warning: 0.9, forMs: 1000, hysteresis: 0.05 });
    const events = [];
    for (let ms = 0; ms < 60_000; ms += 100) {
      const v = 0.9 + (ms % 200 === 0 ? 0.01 : -0.01); // 0.91, 0.89, 0.91, …
      events.push(...at(ms, { 'memory.usedFraction': v }));
    }
    // Below 0.9 every other sample: the warning never holds a full second, so it never fires.
    expect(events).toEqual([]);
    const { at: at2 } = levels({ name: 'mem', series: 'memory.usedFraction', warning: 0.9, hysteresis: 0.05 });
    const e2 = [];
    for (let ms = 0; ms < 10_000; ms += 100)
      e2.push(...at2(ms, { 'memory.usedFraction': 0.9 + (ms % 200 === 0 ? 0.01 : -0.01) }));
    expect(e2).toHaveLength(1); // fired once, held by hysteresis, never resolved
  });

  it('per-model rules, for one model or every model', () => {
    const { m, at } = levels(
      { name: 'slow', series: 'lastBatchMs', model: '*', warning: 100 },
      { name: 'big', series: 'memoryBytes', model: 'a', critical: 1000 },
    );
    const out = at(0, {
      'models.a.lastBatchMs': 150,
      'models.b.lastBatchMs': 50,
      'models.a.memoryBytes': 5000,
      'models.b.memoryBytes': 5000,
    });
    expect(out.map((x) => [x.rule, x.model, x.severity])).toEqual([
      ['slow', 'a', 'warning'],
      ['big', 'a', 'critical'],
    ]);
    expect(out[0]).toMatchObject({
      id: 'slow/models.a.lastBatchMs',
      key: 'models.a.lastBatchMs',
      model: 'a',
      threshold: 100,
      value: 150,
      at: 0,
    });
    expect(() => m.addRule({ kind: 'levels', name: 'x', series: 'r' })).toThrow(/warning/);
    expect(() => m.addRule({ kind: 'levels', name: 'x', series: 'r', warning: 2, critical: 1 })).toThrow(/critical/);
    expect(() => m.addRule({ kind: 'levels', name: 'x', series: 'r', warning: 1, forMs: -1 })).toThrow(/forMs/);
    m.removeRule('big');
    expect(m.active().map((a) => a.rule)).toEqual(['slow']);
  });
});

function sample(load: number): SystemSample {
  const process = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  return {
    timestamp: 0,
    cpu: { load, perCore: [], cores: 1, process: 0 },
    memory: { total: 1, used: 0, available: 1, process },
    disks: [],
    network: [],
    gpus: [],
  };
}

/** A ResourceManager fed `load` by a fake sampler, with a cpu.load levels rule and a bus that may be down. */
function resources() {
  const state = { load: 0, down: false };
  const sent: { type: string; data: Alert }[] = [];
  const rm = new ResourceManager({
    cpuUnits: 1,
    sampler: async () => sample(state.load),
    intervalMs: 5, // the bus is retried this often
    publishEvent: (type, data) => {
      if (state.down) throw new Error('bus down');
      sent.push({ type, data: data as Alert });
    },
  });
  rm.alerts.addRule({ kind: 'levels', name: 'cpu', series: 'cpu.load', warning: 0.8, critical: 0.95 });
  const tick = async (load: number) => {
    state.load = load;
    await rm.monitor.sampleNow();
  };
  return { rm, state, sent, tick };
}

describe('resource alerts on the bus', () => {
  it('one event per change on resource.alert, with its fields: duplicates dropped, resolve sent once', async () => {
    const { rm, sent, tick } = resources();
    await tick(0.9);
    await tick(0.9);
    expect((await rm.snapshot()).alerts).toMatchObject({
      firing: 1,
      active: [{ rule: 'cpu', key: 'cpu.load', severity: 'warning', value: 0.9, threshold: 0.8 }],
    });
    await tick(0.97);
    await tick(0.5);
    await tick(0.5);
    await rm.alerts.flush();
    expect(sent.map((e) => `${e.type} ${e.data.state}/${e.data.severity}`)).toEqual([
      'resource.alert firing/warning',
      'resource.alert firing/critical',
      'resource.alert resolved/critical',
    ]);
    expect(sent[0]!.data).toMatchObject({
      id: 'cpu/cpu.load',
      rule: 'cpu',
      key: 'cpu.load',
      state: 'firing',
      severity: 'warning',
      value: 0.9,
      threshold: 0.8,
      at: sent[0]!.data.ts,
    });
    expect(sent[2]!.data).toMatchObject({
      id: 'cpu/cpu.load',
      state: 'resolved',
      severity: 'critical',
      value: 0.5,
      threshold: 0.95,
      at: sent[2]!.data.ts,
    });
    expect(RESOURCE_ALERT_EVENT).toBe('resource.alert');
    expect((await rm.snapshot()).alerts).toEqual({ firing: 0, sent: 3, pending: 0, dropped: 0, active: [] });
    await rm.stop();
  });

  it('events the bus refused are sent, in order, once it is back', async () => {
    const { rm, state, sent, tick } = resources();
    state.down = true;
    await tick(0.9);
    await tick(0.97);
    expect((await rm.snapshot()).alerts).toMatchObject({ pending: 2, sent: 0 });
    state.down = false;
    await tick(0.5);
    await rm.alerts.flush();
    expect(sent.map((e) => `${e.data.state}/${e.data.severity}`)).toEqual([
      'firing/warning',
      'firing/critical',
      'resolved/critical',
    ]);
    expect((await rm.snapshot()).alerts).toMatchObject({ pending: 0, sent: 3, dropped: 0 });
    await rm.stop();
  });
});
