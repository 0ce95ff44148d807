/** MonitoringExtension on a real WhaleServer: /metrics, /healthz, V2 health with reasons, dashboard routes and SSE, request instrumentation. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { defineModel } from '../src/core/base/model.js';
import { parseConfig } from '../src/config/whale-config.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MonitoringExtension } from '../src/server/extensions/monitoring.js';
import { http, rowsInput, scaleModel, WIDTH } from './support/serving.js';
import { until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-mon-'));

function brokenModel() {
  return defineModel({
    name: 'broken',
    version: '3',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, WIDTH] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, WIDTH] }],
    load: async () => {
      throw new Error('weights file missing');
    },
    process: async (i) => ({ y: i.x! }),
  });
}

async function startServer(
  ext: MonitoringExtension,
  models = [scaleModel('double', 2).model],
  optional: string[] = [],
) {
  const config = parseConfig(
    {
      http: { port: 0 },
      models: models.map((m) => ({
        name: m.name,
        adapter: 'onnx',
        path: `/unused/${m.name}.onnx`,
        ...(optional.includes(m.name) ? { optional: true } : {}),
      })),
      shutdownGraceMs: 2_000,
    },
    '/',
  );
  const bus = new LocalBus();
  const messaging = new MessagingService({
    bus,
    store: new MemoryStateStore(),
    nodeId: 'mon-node',
    logger: silentLogger,
  });
  const server = new WhaleServer({
    config,
    messaging,
    models,
    logger: silentLogger,
    serverVersion: 'test',
    extensions: [ext],
  });
  const { url } = await server.start();
  return { server, url, bus };
}

describe('monitoring on a running server', () => {
  const ext = new MonitoringExtension({
    env: { WHALE_CACHE_DIR: dir },
    logger: silentLogger,
    intervalMs: 100,
    history: join(dir, 'metrics.db'),
  });
  let s: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    s = await startServer(ext);
  });
  afterAll(async () => {
    await s.server.stop();
  });

  it('GET /metrics: Prometheus text with request counts and latency per model/version/level, scheduler, cache, process and device metrics', async () => {
    for (let i = 0; i < 5; i++)
      expect((await http(`${s.url}/v2/models/double/infer`, { json: rowsInput([[1, 2, 3, 4]]) })).status).toBe(200);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const docs = readFileSync(join(import.meta.dirname, '..', 'docs', 'monitoring.md'), 'utf8');
    expect(text).toMatch(/^whale_requests_total\{model="double",version="1",level="normal",outcome="ok"\} 5$/m);
    expect(text).toMatch(/^whale_request_duration_seconds_count\{model="double",version="1",level="normal"\} 5$/m);
    expect(text).toMatch(/^whale_scheduler_batches_total\{model="double"\} [1-5]$/m);
    expect(text).toMatch(/^whale_model_state\{model="double",version="1",state="ready"\} 1$/m);
    expect(text).toMatch(/^whale_pipeline_requests_total\{level="normal"\} 5$/m);
    expect(text).toMatch(/^whale_cache_misses_total\{tier="l1"\} \d+$/m);
    // Node's process metrics under their standard names (what the usual Node.js dashboards query).
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(text).not.toMatch(/^whale_(process|nodejs)_/m);
    expect(text).toMatch(/^whale_device_memory_total_bytes\{device="cpu"\} \d/m);
    // Prometheus conventions: every counter ends in _total; ours under whale_, Node's standard ones under process_/nodejs_.
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      expect(m[1]).toMatch(/^(whale|process|nodejs)_[a-z0-9_]+$/);
      // docs/monitoring.md's metrics table names every family of ours (bus metric families are described by their rule).
      const bus = new RegExp(`^# HELP ${m[1]} Last value of '`, 'm').test(text);
      if (m[1]!.startsWith('whale_') && !bus) expect(docs, `docs/monitoring.md lists ${m[1]}`).toContain(`\`${m[1]}\``);
      if (m[2] === 'counter') expect(m[1]).toMatch(/_total$/);
    }
  });

  it('counts failed requests with outcome="error", and unknown model names under model="unknown"', async () => {
    expect(
      (
        await http(`${s.url}/v2/models/double/infer`, {
          json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] },
        })
      ).status,
    ).toBe(400);
    expect(
      (await http(`${s.url}/v2/models/nope-${Date.now()}/infer`, { json: rowsInput([[1, 2, 3, 4]]) })).status,
    ).toBe(404);
    const x = { name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: new Float32Array(WIDTH) } as const;
    await expect(
      s.server.pipeline.processRequest({ model: `nope-${Date.now()}`, inputs: { x } }),
    ).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toMatch(/^whale_requests_total\{model="double",version="1",level="unknown",outcome="error"\} 1$/m);
    expect(text).toMatch(/^whale_requests_total\{model="unknown",version="",level="unknown",outcome="error"\} 1$/m);
    expect(text).not.toMatch(/model="nope-/);
  });

  it('GET /healthz lists every check; /v2/health/ready and /live answer from the same checks', async () => {
    const res = await http(`${s.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    const names = res.body.checks.map((c: { name: string }) => c.name).sort();
    expect(names).toEqual(['bus', 'disk', 'event-loop', 'gpu', 'models']);
    expect(res.body.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect((await http(`${s.url}/v2/health/ready`)).body).toEqual({ ready: true });
    expect((await http(`${s.url}/v2/health/live`)).body).toEqual({ live: true });
    // Writes are denied before routing unless a key allows them (server/auth/guard): anonymous POST → 403, not 405.
    expect((await http(`${s.url}/metrics`, { method: 'POST', body: '' })).status).toBe(403);
  });

  it('samples feed the dashboard: snapshot JSON, page, assets and live SSE samples', async () => {
    expect(await until(() => ext.monitor.samples().length >= 3, 5_000)).toBe(true);
    const snap = await http(`${s.url}/dashboard/api/snapshot`);
    expect(snap.status).toBe(200);
    const last = snap.body.samples.at(-1);
    expect(last.values).toHaveProperty('requests.rate');
    expect(last.values).toHaveProperty('latency.p95_ms');
    expect(last.values).toHaveProperty('cache.l1.hit_ratio');
    expect(last.models).toEqual([{ name: 'double', version: '1', state: 'ready', requests: expect.any(Number) }]);
    const page = await fetch(`${s.url}/dashboard`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/dashboard/assets/uPlot.iife.min.js');
    for (const a of ['uPlot.iife.min.js', 'uPlot.min.css', 'dashboard.js', 'dashboard.css'])
      expect((await fetch(`${s.url}/dashboard/assets/${a}`)).status).toBe(200);
    expect((await fetch(`${s.url}/dashboard/assets/..%2Fpackage.json`)).status).toBe(404);
    const ctrl = new AbortController();
    const res = await fetch(`${s.url}/dashboard/events`, { signal: ctrl.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!/event: sample\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    ctrl.abort();
    expect(text).toMatch(/^retry: 2000\nevent: snapshot\ndata: \{/);
  });

  it('writes the sampled series to the history, queryable over HTTP', async () => {
    expect(
      await until(async () => (await ext.history!.query('requests.rate', 0, Date.now() + 1, 'raw')).length >= 2, 5_000),
    ).toBe(true);
    const res = await http(`${s.url}/dashboard/api/history?series=requests.rate&from=0&resolution=raw`);
    expect(res.status).toBe(200);
    expect(res.body.rows.length).toBeGreaterThanOrEqual(2);
    expect((await http(`${s.url}/dashboard/api/history?from=0`)).status).toBe(400);
  });

  it('an alert raised appears in the snapshot and on whale.events', async () => {
    const seen: unknown[] = [];
    const sub = await s.bus.subscribe('whale.events', (m) => void seen.push(m.payload), { group: 'test-events' });
    ext.alerts.raise('disk-nearly-full', { severity: 'critical', message: 'disk 97% full' });
    expect(await until(() => seen.length > 0, 3_000)).toBe(true);
    expect(seen[0]).toMatchObject({
      type: 'alert.firing',
      data: { rule: 'disk-nearly-full', severity: 'critical', state: 'firing' },
    });
    expect((await http(`${s.url}/dashboard/api/snapshot`)).body.alerts.active).toEqual([
      expect.objectContaining({ rule: 'disk-nearly-full' }),
    ]);
    expect(ext.alerts.clear('disk-nearly-full')).toBe(true);
    expect(await until(() => seen.length > 1, 3_000)).toBe(true);
    expect(seen[1]).toMatchObject({ type: 'alert.resolved' });
    await sub.close();
  });
});

describe('monitoring reports why the node is not ready', () => {
  it('a required model that cannot load fails the start, naming it (issue 23 item 9)', async () => {
    const ext = new MonitoringExtension({ env: {}, logger: silentLogger, history: false, scorer: false });
    await expect(startServer(ext, [scaleModel('ok', 1).model, brokenModel()])).rejects.toMatchObject({
      code: 'ERR_MODEL_LOAD',
      message: expect.stringMatching(/^model 'broken' cannot be loaded: .*weights file missing/),
    });
  });

  it('an optional model that cannot load is reported on /healthz (reason, state) without failing readiness', async () => {
    const ext = new MonitoringExtension({ env: {}, logger: silentLogger, history: false, scorer: false });
    const s = await startServer(ext, [scaleModel('ok', 1).model, brokenModel()], ['broken']);
    try {
      expect((await http(`${s.url}/v2/health/ready`)).status).toBe(200);
      const h0 = await http(`${s.url}/healthz`);
      expect(h0.status).toBe(200);
      expect(h0.body.checks.find((c: { name: string }) => c.name === 'models')).toMatchObject({
        ok: true,
        reason: expect.stringMatching(/^model 'broken' \(optional\) is failed: .*weights file missing; retrying$/),
        detail: { ok: 'ready', broken: 'failed (optional)' },
      });
    } finally {
      await s.server.stop();
    }
  });

  it('with WHALE_REQUIRE_GPU=1 on a machine without a usable GPU the gpu check fails with the reason', async () => {
    const ext = new MonitoringExtension({
      env: { WHALE_REQUIRE_GPU: '1' },
      logger: silentLogger,
      history: false,
      scorer: false,
    });
    const s = await startServer(ext);
    try {
      const h = await http(`${s.url}/healthz`);
      const gpu = h.body.checks.find((c: { name: string }) => c.name === 'gpu');
      if (gpu.ok) expect(gpu.detail.gpus.length).toBeGreaterThan(0);
      else expect(gpu.reason).toMatch(/no GPU visible/);
      expect(h.status).toBe(gpu.ok ? 200 : 503);
    } finally {
      await s.server.stop();
    }
  });
});
