/** WhaleMetrics, PerformanceMetrics, bus metrics and the HealthChecker with its built-in checks. */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { busConnectedCheck, diskWritableCheck, redisReachableCheck } from '../src/core/monitoring/health/checks.js';
import { HealthChecker } from '../src/core/monitoring/health/health-checker.js';
import { BusMetricsCollector } from '../src/core/monitoring/metrics/bus-metrics.js';
import { PerformanceMetrics } from '../src/core/monitoring/metrics/performance-metrics.js';
import { RequestWindow } from '../src/core/monitoring/metrics/request-window.js';
import { WhaleMetrics } from '../src/core/monitoring/metrics/whale-metrics.js';
import { Monitor } from '../src/core/monitoring/monitor.js';
import { TaskManager } from '../src/core/federation/orchestration/task-manager.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { expectWhaleError, rng, until } from './helpers.js';
import { RedisServer } from './support/redis-server.js';

const line = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

describe('PerformanceMetrics', () => {
  it('recordPerformanceMetrics updates the labelled series and keeps a summary per model', async () => {
    const pm = new PerformanceMetrics({ metrics: new WhaleMetrics({ processMetrics: false }) });
    pm.recordPerformanceMetrics('mnist', 0.9, 0.004, { cpu: 0.5, memoryBytes: 1024 });
    pm.recordPerformanceMetrics('mnist', 0.8, 0.002, { cpu: 0.25 });
    const text = await pm.metrics.text();
    expect(line(text, 'whale_model_accuracy_ratio{model="mnist"}')).toBe(
      'whale_model_accuracy_ratio{model="mnist"} 0.8',
    );
    expect(line(text, 'whale_model_latency_seconds_count{model="mnist"}')).toBe(
      'whale_model_latency_seconds_count{model="mnist"} 2',
    );
    expect(line(text, 'whale_model_latency_seconds_sum{model="mnist"}')).toBe(
      'whale_model_latency_seconds_sum{model="mnist"} 0.006',
    );
    expect(line(text, 'whale_model_resource_usage{model="mnist",resource="cpu"}')).toMatch(/ 0\.25$/);
    expect(line(text, 'whale_model_resource_usage{model="mnist",resource="memoryBytes"}')).toMatch(/ 1024$/);
    const [s] = pm.collectMetrics('mnist');
    expect(s).toMatchObject({ modelId: 'mnist', records: 2, last: { accuracy: 0.8 } });
    expect(s!.meanAccuracy).toBeCloseTo(0.85, 12);
    expect(s!.meanLatency).toBeCloseTo(0.003, 12);
  });

  it('federation rounds and aggregation kernels', async () => {
    const pm = new PerformanceMetrics({ metrics: new WhaleMetrics({ processMetrics: false }) });
    pm.recordFederationRound('2nn', { round: 1, accuracy: 0.7, clients: 10, durationSeconds: 3 });
    pm.recordFederationRound('2nn', { round: 2, accuracy: 0.8 });
    pm.metrics.recordAggregation('median', 'cpu', 0.02, 4e6);
    const text = await pm.metrics.text();
    expect(line(text, 'whale_federation_rounds_total{model="2nn"}')).toBe(
      'whale_federation_rounds_total{model="2nn"} 2',
    );
    expect(line(text, 'whale_federation_accuracy_ratio{model="2nn"}')).toBe(
      'whale_federation_accuracy_ratio{model="2nn"} 0.8',
    );
    expect(line(text, 'whale_federation_round_clients{model="2nn"}')).toBe(
      'whale_federation_round_clients{model="2nn"} 10',
    );
    expect(line(text, 'whale_aggregation_input_bytes_total{strategy="median",device="cpu"}')).toMatch(/ 4000000$/);
  });

  it('bad input is a typed error naming the field, and records nothing', async () => {
    const pm = new PerformanceMetrics({ metrics: new WhaleMetrics({ processMetrics: false }) });
    await expectWhaleError(() => pm.recordPerformanceMetrics('m', 1.5, 0.1), 'ERR_INVALID_ARG', 'accuracy');
    await expectWhaleError(() => pm.recordPerformanceMetrics('m', Number.NaN, 0.1), 'ERR_INVALID_ARG', 'accuracy');
    await expectWhaleError(() => pm.recordPerformanceMetrics('m', 0.5, -1), 'ERR_INVALID_ARG', 'latency');
    await expectWhaleError(
      () => pm.recordPerformanceMetrics('m', 0.5, 0.1, { gpu: Infinity }),
      'ERR_INVALID_ARG',
      'resourceUsage.gpu',
    );
    await expectWhaleError(
      () => pm.recordPerformanceMetrics('m', 0.5, 0.1, [] as never),
      'ERR_INVALID_ARG',
      'resourceUsage',
    );
    await expectWhaleError(() => pm.recordPerformanceMetrics('a b"c', 0.5, 0.1), 'ERR_INVALID_ARG', 'modelId');
    await expectWhaleError(() => pm.recordFederationRound('m', { round: -1 }), 'ERR_INVALID_ARG', 'round.round');
    await expectWhaleError(
      () => pm.metrics.recordAggregation('fedavg', 'cpu', 0.1, -5),
      'ERR_INVALID_ARG',
      'inputBytes',
    );
    await expectWhaleError(
      () => new PerformanceMetrics({ keepPerModel: 0 }),
      'ERR_INVALID_OPTION',
      'options.keepPerModel',
    );
    expect(pm.collectMetrics()).toEqual([]);
    expect(await pm.metrics.text()).not.toMatch(/^whale_model_accuracy_ratio\{/m);
  });
});

describe('metrics from the bus and the request window', () => {
  it('collects what services publish on whale.metrics; federation metrics feed the federation series; invalid ones are counted', async () => {
    const bus = new LocalBus();
    const messaging = new MessagingService({ bus, store: new MemoryStateStore(), nodeId: 'n1', logger: silentLogger });
    await messaging.initialize();
    const metrics = new WhaleMetrics({ processMetrics: false });
    const seen: string[] = [];
    const c = new BusMetricsCollector({
      metrics,
      logger: silentLogger,
      maxSeries: 3,
      onMetric: (m) => seen.push(m.name),
    });
    await c.start(bus);
    try {
      await messaging.publishMetric('federation.round', 1, { model: 'm1' });
      await messaging.publishMetric('federation.accuracy', 0.75, { model: 'm1' });
      await messaging.publishMetric('queue.lag', 12, { topic: 't', partition: '0' });
      expect(await until(() => seen.length === 3, 3_000)).toBe(true); // different keys: no order between them
      await messaging.publishMetric('one.too.many', 1);
      expect(await until(() => seen.length === 4, 3_000)).toBe(true);
      c.take({ name: 'x', value: 'NaN' }, 'n1');
      const text = await metrics.text();
      expect(line(text, 'whale_federation_rounds_total{model="m1"}')).toMatch(/ 1$/);
      expect(line(text, 'whale_federation_accuracy_ratio{model="m1"}')).toMatch(/ 0\.75$/);
      // One family per bus metric name, its labels real labels (and the publishing node as source).
      expect(text).toContain('# TYPE whale_queue_lag gauge');
      expect(text).toContain('whale_queue_lag{source="n1",partition="0",topic="t"} 12');
      expect(text).not.toMatch(/one_too_many|whale_bus_metric\{/);
      expect(line(text, 'whale_bus_metric_series_dropped_total')).toBe('whale_bus_metric_series_dropped_total 1');
      expect(line(text, 'whale_bus_metric_invalid_total')).toBe('whale_bus_metric_invalid_total 1');
    } finally {
      await c.stop();
      await messaging.shutdown();
    }
  });

  it("the coordinator's round figures (TaskManager.metrics) move the federation families and the dashboard's federation series", async () => {
    const bus = new LocalBus();
    const metrics = new WhaleMetrics({ processMetrics: false });
    const seen: string[] = [];
    const c = new BusMetricsCollector({ metrics, logger: silentLogger, onMetric: (m) => seen.push(m.name) });
    await c.start(bus);
    try {
      const tasks = new TaskManager('mnist-2nn', bus, silentLogger);
      await tasks.metrics(3, { round_test_accuracy: 0.91, round_received: 4, round_seconds: 2.5, round_bytes_up: 10 });
      expect(await until(() => seen.includes('federation.round_bytes_up'), 3_000)).toBe(true);
      const text = await metrics.text();
      expect(line(text, 'whale_federation_rounds_total{model="mnist-2nn"}')).toMatch(/ 1$/);
      expect(line(text, 'whale_federation_accuracy_ratio{model="mnist-2nn"}')).toMatch(/ 0\.91$/);
      expect(line(text, 'whale_federation_round_clients{model="mnist-2nn"}')).toMatch(/ 4$/);
      expect(line(text, 'whale_federation_round_duration_seconds_count{model="mnist-2nn"}')).toMatch(/ 1$/);
      // No per-round label: one series per federation, not one per round.
      expect(text).not.toMatch(/round="3"/);
      const monitor = new Monitor({ metrics, source: {}, logger: silentLogger });
      const sample = await monitor.tick();
      expect(sample.values['federation.rounds']).toBe(1);
      expect(sample.values['federation.accuracy.mnist-2nn']).toBe(0.91);
    } finally {
      await c.stop();
      await bus.close();
    }
  });

  it('bus metric families: sanitized names, real labels, widening label sets, bounds and collisions', async () => {
    const metrics = new WhaleMetrics({ processMetrics: false });
    const c = new BusMetricsCollector({ metrics, logger: silentLogger, maxSeries: 7, maxFamilies: 4, maxLabels: 4 });
    c.take({ name: 'resource.model.wall_ms', value: 12.5, labels: { model: 'mnist' } }, 'node-1');
    c.take({ name: 'resource.model.wall_ms', value: 13.5, labels: { model: 'mnist' } }, 'node-1'); // last value wins
    c.take({ name: 'resource.model.wall_ms', value: 7, labels: { model: 'cnn' } }, 'node-2');
    c.take({ name: 'resource.gpu.utilization', value: 0.5, labels: { device: 'cuda:0', source: 'theirs' } }, 'node-1');
    c.take({ name: 'resource.gpu.utilization', value: 0.25, labels: { device: 'cuda:1', kind: 'sm' } }, 'node-1'); // a label the family had not had
    c.take({ name: 'models.mnist.cpuMs', value: 3 }, 'node-1');
    c.take({ name: 'requests.total', value: 1 }, 'node-1'); // whale_requests_total is ours: exposed as whale_bus_requests_total
    let text = await metrics.text();
    expect(line(text, 'whale_resource_model_wall_ms{source="node-1",model="mnist"}')).toBe(
      'whale_resource_model_wall_ms{source="node-1",model="mnist"} 13.5',
    );
    expect(line(text, 'whale_resource_model_wall_ms{source="node-2",model="cnn"}')).toMatch(/ 7$/);
    expect(text).toContain(
      'whale_resource_gpu_utilization{source="node-1",device="cuda:0",exported_source="theirs"} 0.5',
    );
    expect(text).toContain('whale_resource_gpu_utilization{source="node-1",device="cuda:1",kind="sm"} 0.25');
    expect(line(text, 'whale_models_mnist_cpu_ms{source="node-1"}')).toMatch(/ 3$/);
    expect(line(text, 'whale_bus_requests_total{source="node-1"}')).toMatch(/ 1$/);
    expect(text).toMatch(
      /^# HELP whale_resource_model_wall_ms Last value of 'resource\.model\.wall_ms' published on whale\.metrics/m,
    );
    expect(c.familyNames().sort()).toEqual([
      'whale_bus_requests_total',
      'whale_models_mnist_cpu_ms',
      'whale_resource_gpu_utilization',
      'whale_resource_model_wall_ms',
    ]);
    // Bounds: a fifth family, an eighth series, a fifth label, an unusable name: counted, not exposed.
    c.take({ name: 'a.fifth.family', value: 1 }, 'node-1');
    c.take({ name: 'resource.model.wall_ms', value: 1, labels: { model: 'x' } }, 'node-1');
    c.take({ name: 'resource.model.wall_ms', value: 1, labels: { model: 'y' } }, 'node-1');
    c.take({ name: 'resource.model.wall_ms', value: 1, labels: { model: 'z', a: '1', b: '2', c: '3' } }, 'node-1');
    c.take({ name: '...', value: 1 }, 'node-1');
    text = await metrics.text();
    expect(text).not.toContain('a_fifth_family');
    expect(text).toContain('whale_resource_model_wall_ms{source="node-1",model="x"} 1');
    expect(text).not.toContain('model="y"');
    expect(text).not.toContain('model="z"');
    expect(line(text, 'whale_bus_metric_series_dropped_total')).toBe('whale_bus_metric_series_dropped_total 4');
    for (const m of text.matchAll(/^# TYPE (\S+) /gm)) expect(m[1]).toMatch(/^whale_[a-z0-9_]+$/);
  });

  it('RequestWindow: counts, errors and percentiles of a uniform sample, bounded memory', () => {
    const w = new RequestWindow(1024);
    const r = rng(7);
    const lat: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const s = 0.001 + 0.009 * r.uniform(); // uniform on 1..10 ms
      lat.push(s);
      w.add(i % 2 ? 'a' : 'b', s, true);
    }
    w.add('a', 5, false);
    const s = w.take();
    expect(s).toMatchObject({ requests: 20_001, errors: 1, perModel: { a: 10_001, b: 10_000 } });
    expect(Math.abs(s.p50 - 5.5)).toBeLessThan(0.5); // reservoir of 1024: p50 within ~0.3 ms
    expect(Math.abs(s.p95 - 9.55)).toBeLessThan(0.3);
    expect(s.p99).toBeLessThanOrEqual(10);
    expect(w.take()).toEqual({ requests: 0, errors: 0, perModel: {}, p50: 0, p95: 0, p99: 0 });
  });
});

describe('HealthChecker', () => {
  it('a check that throws or hangs fails with its reason (bounded by its timeout); liveness and readiness are separate', async () => {
    const h = new HealthChecker({ timeoutMs: 5_000, minIntervalMs: 0 });
    h.addCheck({ name: 'alive', kind: 'liveness', run: () => ({ ok: true }) });
    h.addCheck({
      name: 'throws',
      kind: 'readiness',
      run: () => {
        throw new Error('boom');
      },
    });
    h.addCheck({ name: 'hangs', kind: 'readiness', timeoutMs: 100, run: () => new Promise(() => undefined) });
    const started = Date.now();
    const r = await h.check();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r.live).toBe(true);
    expect(r.ready).toBe(false);
    expect(r.checks.map((c) => [c.name, c.ok, c.reason])).toEqual([
      ['alive', true, undefined],
      ['throws', false, 'boom'],
      ['hangs', false, 'timed out after 100 ms'],
    ]);
  });

  it('concurrent probes share one run; a fresh report is reused within minIntervalMs', async () => {
    let runs = 0;
    const h = new HealthChecker({ minIntervalMs: 60_000 });
    h.addCheck({
      name: 'slow',
      kind: 'readiness',
      run: async () => (runs++, await new Promise((r) => setTimeout(r, 50)), { ok: true }),
    });
    const reports = await Promise.all(Array.from({ length: 10 }, () => h.check()));
    expect(runs).toBe(1);
    expect(await h.check()).toBe(reports[0]);
    expect(runs).toBe(1);
  });

  it('bad checks and options are typed errors', async () => {
    const h = new HealthChecker();
    await expectWhaleError(
      () => h.addCheck({ name: '', kind: 'readiness', run: () => ({ ok: true }) }),
      'ERR_INVALID_ARG',
      'check.name',
    );
    await expectWhaleError(
      () => h.addCheck({ name: 'x', kind: 'startup' as never, run: () => ({ ok: true }) }),
      'ERR_INVALID_ARG',
      'check.kind',
    );
    await expectWhaleError(
      () => h.addCheck({ name: 'x', kind: 'liveness', run: 'yes' as never }),
      'ERR_INVALID_ARG',
      'check.run',
    );
    await expectWhaleError(() => new HealthChecker({ timeoutMs: 0 }), 'ERR_INVALID_OPTION', 'options.timeoutMs');
    h.addCheck({ name: 'x', kind: 'liveness', run: () => ({ ok: true }) });
    await expectWhaleError(
      () => h.addCheck({ name: 'x', kind: 'liveness', run: () => ({ ok: true }) }),
      'ERR_CONFLICT',
      'check.name',
    );
  });

  it('disk: a writable directory passes, a path under a file fails with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-disk-'));
    expect(await diskWritableCheck(dir).run()).toMatchObject({ ok: true });
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    expect(await diskWritableCheck(join(file, 'sub')).run()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/is not writable.*ENOTDIR/),
    });
    chmodSync(file, 0o600);
  });

  it('redis: reachable passes; a server that goes away fails fast with the reason; it passes again once back', async () => {
    const redis = await RedisServer.start();
    const check = redisReachableCheck(redis.url);
    try {
      expect(await check.run()).toEqual({ ok: true });
      await redis.kill();
      const started = Date.now();
      const down = await check.run();
      expect(down.ok).toBe(false);
      expect(down.reason).toMatch(/^redis at redis:\/\/127\.0\.0\.1:\d+/);
      expect(Date.now() - started).toBeLessThan(1_500);
      await redis.launch();
      expect(await until(async () => (await check.run()).ok, 10_000)).toBe(true);
    } finally {
      await check.close();
      await redis.stop();
    }
  });

  it('bus: passes on an open bus, fails with the reason once it is closed', async () => {
    const bus = new LocalBus();
    const check = busConnectedCheck(() => bus, 'n1');
    expect(await check.run()).toEqual({ ok: true, detail: { kind: 'local' } });
    await bus.close();
    expect(await check.run()).toMatchObject({ ok: false, reason: expect.stringMatching(/^local bus: /) });
  });
});
