// Thresholds and alerts with a fake clock: fire only after the duration,
// resolve with hysteresis, no flapping, deduplicated events, nothing lost
// when the bus fails.
import { describe, expect, it } from 'vitest';

import { AlertGenerator, type ResourceAlert } from '../src/core/resource-management/monitor/alert-generator.js';
import { ThresholdManager } from '../src/core/resource-management/monitor/threshold-manager.js';

describe('ThresholdManager', () => {
  it('fires after the level held for forMs, escalates, and resolves only below the hysteresis band', () => {
    const t = new ThresholdManager();
    t.setRule({ name: 'cpu', resource: 'cpu.load', warning: 0.8, critical: 0.95, forMs: 3000, hysteresis: 0.1, resolveForMs: 2000 });
    const at = (ms: number, v: number) => t.evaluate({ 'cpu.load': v }, ms);
    expect(at(0, 0.85)).toEqual([]);
    expect(at(2999, 0.9)).toEqual([]); // not yet held 3 s
    expect(at(3000, 0.9)).toMatchObject([{ rule: 'cpu', state: 'firing', severity: 'warning', threshold: 0.8, value: 0.9 }]);
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
    const t = new ThresholdManager();
    t.setRule({ name: 'mem', resource: 'memory.usedFraction', warning: 0.9, forMs: 1000, hysteresis: 0.05 });
    const events = [];
    for (let ms = 0; ms < 60_000; ms += 100) {
      const v = 0.9 + (ms % 200 === 0 ? 0.01 : -0.01); // 0.91, 0.89, 0.91, …
      events.push(...t.evaluate({ 'memory.usedFraction': v }, ms));
    }
    // Below 0.9 every other sample: the warning never holds a full second, so it never fires.
    expect(events).toEqual([]);
    const t2 = new ThresholdManager();
    t2.setRule({ name: 'mem', resource: 'memory.usedFraction', warning: 0.9, hysteresis: 0.05 });
    const e2 = [];
    for (let ms = 0; ms < 10_000; ms += 100) e2.push(...t2.evaluate({ 'memory.usedFraction': 0.9 + (ms % 200 === 0 ? 0.01 : -0.01) }, ms));
    expect(e2).toHaveLength(1); // fired once, held by hysteresis, never resolved
  });

  it('per-model rules, for one model or every model', () => {
    const t = new ThresholdManager();
    t.setRule({ name: 'slow', resource: 'lastBatchMs', model: '*', warning: 100 });
    t.setRule({ name: 'big', resource: 'memoryBytes', model: 'a', critical: 1000 });
    const out = t.evaluate({ 'models.a.lastBatchMs': 150, 'models.b.lastBatchMs': 50, 'models.a.memoryBytes': 5000, 'models.b.memoryBytes': 5000 }, 0);
    expect(out.map((x) => [x.rule, x.model, x.severity])).toEqual([
      ['slow', 'a', 'warning'],
      ['big', 'a', 'critical'],
    ]);
    expect(() => t.setRule({ name: 'x', resource: 'r' })).toThrow(/warning/);
    expect(() => t.setRule({ name: 'x', resource: 'r', warning: 2, critical: 1 })).toThrow(/critical/);
    expect(() => t.setRule({ name: 'x', resource: 'r', warning: 1, forMs: -1 })).toThrow(/forMs/);
  });
});

describe('AlertGenerator', () => {
  const transition = (state: 'firing' | 'resolved', severity: 'warning' | 'critical' = 'warning') => ({
    rule: 'cpu',
    key: 'cpu.load',
    state,
    severity,
    value: 1,
    threshold: 0.8,
    at: 0,
  });

  it('one event per change: duplicates dropped, resolve sent once', async () => {
    const sent: ResourceAlert[] = [];
    const g = new AlertGenerator((_type, a) => void sent.push(a));
    await g.handle([transition('firing')]);
    await g.handle([transition('firing')]);
    expect(g.firing()).toHaveLength(1);
    await g.handle([transition('firing', 'critical')]);
    await g.handle([transition('resolved', 'critical')]);
    await g.handle([transition('resolved', 'critical')]);
    expect(sent.map((a) => `${a.state}/${a.severity}`)).toEqual(['firing/warning', 'firing/critical', 'resolved/critical']);
    expect(g.firing()).toEqual([]);
  });

  it('events the bus refused are sent, in order, on the next call', async () => {
    const sent: string[] = [];
    let down = true;
    const g = new AlertGenerator((_type, a) => {
      if (down) throw new Error('bus down');
      sent.push(`${a.state}/${a.severity}`);
    });
    await g.handle([transition('firing')]);
    await g.handle([transition('firing', 'critical')]);
    expect(g.stats()).toMatchObject({ pending: 2, sent: 0 });
    down = false;
    await g.handle([transition('resolved', 'critical')]);
    expect(sent).toEqual(['firing/warning', 'firing/critical', 'resolved/critical']);
    expect(g.stats()).toMatchObject({ pending: 0, sent: 3, dropped: 0 });
  });
});
