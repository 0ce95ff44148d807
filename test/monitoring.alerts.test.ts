/** AlertManager: thresholds with duration and hysteresis, anomaly and health rules, dedup, resolve events, delivery to the bus, history and a webhook. */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { AlertManager, type Alert } from '../src/core/monitoring/visualization/alert-manager.js';
import type { HealthReport } from '../src/core/monitoring/health/health-checker.js';
import type { AlertRecord } from '../src/core/monitoring/history/metric-history.js';
import { expectWhaleError, until } from './helpers.js';

function manager(
  rules: ConstructorParameters<typeof AlertManager>[0]['rules'],
  extra: Partial<ConstructorParameters<typeof AlertManager>[0]> = {},
) {
  const events: { type: string; data: AlertRecord }[] = [];
  const changes: Alert[] = [];
  const m = new AlertManager({
    rules,
    logger: silentLogger,
    publish: async (type, data) => void events.push({ type, data: data as AlertRecord }),
    onChange: (a) => changes.push(a),
    ...extra,
  });
  return { m, events, changes };
}

const health = (ok: boolean, ts: number, reason = 'redis at 127.0.0.1:1: connect ECONNREFUSED'): HealthReport => ({
  live: true,
  ready: ok,
  timestamp: ts,
  checks: [
    { name: 'redis', kind: 'readiness', ok, ...(ok ? {} : { reason }), durationMs: 1 },
    { name: 'models', kind: 'readiness', ok: true, durationMs: 1 },
  ],
});

describe('threshold rules', () => {
  it('fire only after the condition held for forMs, once (dedup), and resolve past clearValue held for forMs (hysteresis)', async () => {
    const { m, events } = manager([
      {
        kind: 'threshold',
        name: 'p95-high',
        series: 'latency.p95_ms',
        op: '>',
        value: 100,
        clearValue: 80,
        forMs: 2_000,
        severity: 'critical',
      },
    ]);
    const feed = (pairs: [number, number][]) => pairs.forEach(([t, v]) => m.observe('latency.p95_ms', v, t));
    feed([
      [0, 150],
      [1_000, 150],
      [1_500, 90],
    ]); // breach interrupted before 2 s
    expect(m.active()).toEqual([]);
    feed([
      [2_000, 150],
      [3_000, 150],
      [4_000, 160],
    ]);
    expect(m.active()).toHaveLength(1);
    feed([
      [5_000, 200],
      [6_000, 300],
    ]);
    expect(m.active()).toHaveLength(1);
    feed([
      [7_000, 90],
      [8_000, 95],
      [9_500, 85],
    ]); // below 100 but not below clearValue 80: still firing
    expect(m.active()).toHaveLength(1);
    feed([
      [10_000, 70],
      [11_000, 75],
      [11_500, 120],
      [12_000, 70],
      [13_000, 60],
      [14_000, 50],
    ]);
    expect(m.active()).toEqual([]);
    await m.flush();
    expect(events.map((e) => e.type)).toEqual(['alert.firing', 'alert.resolved']);
    expect(events[0]!.data).toMatchObject({
      rule: 'p95-high',
      severity: 'critical',
      state: 'firing',
      ts: 4_000,
      labels: { series: 'latency.p95_ms' },
    });
    expect(events[0]!.data.message).toBe('latency.p95_ms > 100 (now 160)');
    expect(events[1]!.data).toMatchObject({ state: 'resolved', ts: 14_000, id: events[0]!.data.id });
  });

  it('"<" rules and a rule without forMs fire on the first breaching sample; other series are ignored', () => {
    const { m } = manager([{ kind: 'threshold', name: 'l1-cold', series: 'cache.l1.hit_ratio', op: '<', value: 0.2 }]);
    m.observe('cache.l2.hit_ratio', 0, 1);
    expect(m.active()).toEqual([]);
    m.observe('cache.l1.hit_ratio', 0.1, 2);
    expect(m.active()).toEqual([expect.objectContaining({ rule: 'l1-cold', value: 0.1 })]);
    m.observe('cache.l1.hit_ratio', 0.2, 3); // exactly the limit is not yet safe
    expect(m.active()).toHaveLength(1);
    m.observe('cache.l1.hit_ratio', 0.5, 4);
    expect(m.active()).toEqual([]);
  });
});

describe('levels rules', () => {
  it('warning and critical levels on a series: the level is the severity, events carry key, threshold and at, the id is <rule>/<key>', async () => {
    const { m, events } = manager([
      { kind: 'levels', name: 'queue', series: 'queue.depth', warning: 100, critical: 1000, hysteresis: 50 },
    ]);
    m.observe('queue.depth', 150, 1_000);
    m.observe('queue.depth', 1500, 2_000);
    m.observe('queue.depth', 980, 3_000); // within the hysteresis band of the critical level
    expect(m.active()).toEqual([expect.objectContaining({ severity: 'critical', threshold: 1000, since: 1_000 })]);
    m.observe('queue.depth', 10, 4_000);
    expect(m.active()).toEqual([]);
    await m.flush();
    expect(events.map((e) => `${e.type}/${e.data.severity}`)).toEqual([
      'alert.firing/warning',
      'alert.firing/critical',
      'alert.resolved/critical',
    ]);
    expect(events[0]!.data).toMatchObject({
      id: 'queue/queue.depth',
      fingerprint: 'queue/queue.depth',
      key: 'queue.depth',
      threshold: 100,
      value: 150,
      at: 1_000,
      ts: 1_000,
      message: 'queue.depth at 150: warning level 100',
    });
    expect(events[2]!.data).toMatchObject({
      id: 'queue/queue.depth',
      state: 'resolved',
      value: 10,
      threshold: 1000,
      at: 4_000,
    });
  });

  it('observeAll evaluates rule by rule; removeRule resolves what the rule fired; eventType names the bus event', async () => {
    const { m, events } = manager(
      [
        { kind: 'levels', name: 'slow', series: 'lastBatchMs', model: '*', warning: 100 },
        { kind: 'threshold', name: 'cpu-high', series: 'cpu.load', op: '>', value: 0.9 },
      ],
      { eventType: (a) => `custom.${a.state}` },
    );
    m.observeAll({ 'models.b.lastBatchMs': 150, 'cpu.load': 0.95, 'models.a.lastBatchMs': 120 }, 5);
    expect(m.active().map((a) => `${a.rule}:${a.model ?? ''}`)).toEqual(['slow:b', 'slow:a', 'cpu-high:']);
    m.removeRule('slow');
    expect(m.active().map((a) => a.rule)).toEqual(['cpu-high']);
    expect(m.ruleList().map((r) => r.name)).toEqual(['cpu-high']);
    await m.flush();
    expect(events.map((e) => e.type)).toEqual([
      'custom.firing',
      'custom.firing',
      'custom.firing',
      'custom.resolved',
      'custom.resolved',
    ]);
  });
});

describe('anomaly and health rules', () => {
  it('anomaly: fires after `points` consecutive anomalies on a matching series, resolves after clearAfterMs without one', async () => {
    const { m, events } = manager([
      { kind: 'anomaly', name: 'anomalous-latency', series: 'latency.*', points: 2, clearAfterMs: 5_000 },
    ]);
    m.observeAnomaly('latency.p99_ms', 0.97, true, 1_000);
    m.observeAnomaly('latency.p99_ms', 0.2, false, 2_000);
    m.observeAnomaly('latency.p99_ms', 0.98, true, 3_000);
    expect(m.active()).toEqual([]);
    m.observeAnomaly('latency.p99_ms', 0.99, true, 4_000);
    m.observeAnomaly('requests.rate', 1, true, 4_000);
    expect(m.active()).toEqual([
      expect.objectContaining({ rule: 'anomalous-latency', labels: { series: 'latency.p99_ms' } }),
    ]);
    m.observeAnomaly('latency.p99_ms', 0.1, false, 8_000);
    expect(m.active()).toHaveLength(1);
    m.observeAnomaly('latency.p99_ms', 0.1, false, 9_000);
    expect(m.active()).toEqual([]);
    await m.flush();
    expect(events.map((e) => e.type)).toEqual(['alert.firing', 'alert.resolved']);
    expect(events[0]!.data.message).toBe('anomaly on latency.p99_ms (score 0.99)');
  });

  it('health: fires with the failing check and its reason after forMs, resolves when it passes', () => {
    const { m, changes } = manager([{ kind: 'health', name: 'unhealthy', check: '*', forMs: 1_000 }]);
    m.observeHealth(health(false, 0));
    expect(m.active()).toEqual([]);
    m.observeHealth(health(false, 1_000));
    expect(m.active()).toEqual([
      expect.objectContaining({
        rule: 'unhealthy',
        labels: { check: 'redis' },
        message: "health check 'redis' failing: redis at 127.0.0.1:1: connect ECONNREFUSED",
      }),
    ]);
    m.observeHealth(health(false, 2_000));
    m.observeHealth(health(true, 3_000));
    expect(m.active()).toEqual([]);
    expect(changes.map((c) => c.state)).toEqual(['firing', 'resolved']);
  });

  it('raise/clear: injected alerts are deduplicated on name and labels; recent() lists events newest first', () => {
    const { m } = manager([]);
    const a = m.raise('deploy', { labels: { model: 'a' } });
    expect(m.raise('deploy', { labels: { model: 'a' } }).id).toBe(a.id);
    m.raise('deploy', { labels: { model: 'b' } });
    expect(m.active()).toHaveLength(2);
    expect(m.clear('deploy', { model: 'a' })).toBe(true);
    expect(m.clear('deploy', { model: 'a' })).toBe(false);
    expect(m.recent().map((e) => [e.state, e.labels.model])).toEqual([
      ['resolved', 'a'],
      ['firing', 'b'],
      ['firing', 'a'],
    ]);
  });
});

describe('delivery', () => {
  it('POSTs firing and resolve events to the webhook, retrying through failures (none lost), and stores them', async () => {
    const received: { type: string; alert: AlertRecord }[] = [];
    let failuresLeft = 2;
    const srv = createServer((req: IncomingMessage, res) => {
      let body = '';
      req
        .on('data', (d) => (body += d))
        .on('end', () => {
          if (failuresLeft-- > 0) {
            res.writeHead(503).end();
            return;
          }
          received.push(JSON.parse(body));
          res.writeHead(204).end();
        });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const stored: AlertRecord[] = [];
    const { m } = manager([], {
      webhookUrl: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`,
      store: async (a) => void stored.push(a),
    });
    try {
      m.raise('backup-missed', { severity: 'info', message: 'no backup for 2 days' });
      m.clear('backup-missed');
      expect(await until(() => received.length === 2, 10_000)).toBe(true);
      await m.flush();
      expect(received.map((r) => [r.type, r.alert.rule, r.alert.message])).toEqual([
        ['alert.firing', 'backup-missed', 'no backup for 2 days'],
        ['alert.resolved', 'backup-missed', 'no backup for 2 days'],
      ]);
      expect(stored.map((s) => s.state)).toEqual(['firing', 'resolved']);
      expect(m.deliveryStats()).toEqual({ delivered: 6, failed: 0, pending: 0 }); // bus, history and webhook, 2 events each
    } finally {
      await m.close();
      srv.close();
    }
  });

  it('a webhook that never answers is given up after its attempts, counted, and the other sinks still get the event', async () => {
    const { m, events } = manager([], { webhookUrl: 'http://127.0.0.1:1/hook', webhookTimeoutMs: 200 });
    m.raise('x');
    await m.close(); // stops the backoff: the queued event gets its last attempt now
    expect(events).toHaveLength(1);
    expect(m.deliveryStats()).toMatchObject({ delivered: 1, failed: 1, pending: 0 });
  });
});

describe('rule validation', () => {
  it('typed errors name the field', async () => {
    await expectWhaleError(
      () => manager([{ kind: 'threshold', name: 'x', series: 's', op: '>', value: Number.NaN }]),
      'ERR_INVALID_ARG',
      'rules[0].value',
    );
    await expectWhaleError(
      () => manager([{ kind: 'threshold', name: 'x', series: 's', op: '>', value: 10, clearValue: 20 }]),
      'ERR_INVALID_ARG',
      'rules[0].clearValue',
    );
    await expectWhaleError(
      () => manager([{ kind: 'threshold', name: 'x', series: 's', op: '=>' as never, value: 1 }]),
      'ERR_INVALID_ARG',
      'rules[0].op',
    );
    await expectWhaleError(
      () => manager([{ kind: 'anomaly', name: 'x', series: 's', points: 0 }]),
      'ERR_INVALID_ARG',
      'rules[0].points',
    );
    await expectWhaleError(
      () => manager([{ kind: 'health', name: 'bad name!', check: '*' }]),
      'ERR_INVALID_ARG',
      'rules[0].name',
    );
    await expectWhaleError(() => manager([{ kind: 'slo', name: 'x' } as never]), 'ERR_INVALID_ARG', 'rules[0].kind');
    await expectWhaleError(
      () =>
        manager([
          { kind: 'health', name: 'a', check: '*' },
          { kind: 'health', name: 'a', check: 'redis' },
        ]),
      'ERR_CONFLICT',
      'rules[1].name',
    );
    await expectWhaleError(
      () => manager([], { webhookUrl: 'file:///etc/passwd' }),
      'ERR_INVALID_OPTION',
      'options.webhookUrl',
    );
    await expectWhaleError(
      () => manager([]).m.raise('x', { severity: 'fatal' as never }),
      'ERR_INVALID_ARG',
      'alert.severity',
    );
    await expectWhaleError(
      () => manager([{ kind: 'levels', name: 'x', series: 's' }]),
      'ERR_INVALID_ARG',
      'rules[0].warning',
    );
    await expectWhaleError(
      () => manager([{ kind: 'levels', name: 'x', series: 's', warning: 2, critical: 1 }]),
      'ERR_INVALID_ARG',
      'rules[0].critical',
    );
    await expectWhaleError(
      () => manager([{ kind: 'levels', name: 'x', series: 's', warning: 1, hysteresis: -1 }]),
      'ERR_INVALID_ARG',
      'rules[0].hysteresis',
    );
    await expectWhaleError(
      () => manager([{ kind: 'levels', name: 'x', series: 's', warning: 1, severity: 'critical' } as never]),
      'ERR_INVALID_ARG',
      'rules[0].severity',
    );
  });
});
