/**
 * The dashboard in a real browser: Debian's chromium (scripts/ensure-toolchain.sh
 * installs it) driven by playwright-core loads /dashboard while requests run,
 * sees the numbers move, an injected alert appear and anomalies marked, and
 * saves a screenshot (build/test-artifacts/dashboard.png).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MonitoringExtension } from '../src/server/extensions/monitoring.js';
import type { SeriesScorer } from '../src/core/monitoring/monitor.js';
import { TaskManager } from '../src/core/federation/orchestration/task-manager.js';
import { rowsInput, scaleModel } from './support/serving.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'build', 'test-artifacts');

/** Marks every 8th point of requests.rate anomalous (the detector itself is tested on NAB elsewhere). */
function everyEighth(): SeriesScorer {
  let n = 0;
  return {
    update: (series, value) => {
      if (series !== 'requests.rate') return { score: 0, anomaly: false };
      const anomaly = value > 0 && ++n % 8 === 0;
      return { score: anomaly ? 0.99 : 0.1, anomaly };
    },
  };
}

describe('dashboard in headless Chromium', () => {
  let browser: Browser;
  let server: WhaleServer;
  let messaging: MessagingService;
  let url: string;
  const ext = new MonitoringExtension({
    env: {},
    logger: silentLogger,
    intervalMs: 250,
    history: ':memory:',
    scorer: everyEighth(),
  });
  let traffic = true;
  let sent = 0;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/ensure-toolchain.sh (npm test does)`).toBe(true);
    const model = scaleModel('double', 2).model;
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [{ name: 'double', adapter: 'onnx', path: '/unused/double.onnx' }],
        shutdownGraceMs: 2_000,
      },
      '/',
    );
    messaging = new MessagingService({
      bus: new LocalBus(),
      store: new MemoryStateStore(),
      nodeId: 'browser-node',
      logger: silentLogger,
    });
    server = new WhaleServer({
      config,
      messaging,
      models: [model],
      logger: silentLogger,
      serverVersion: 'test',
      extensions: [ext],
    });
    url = (await server.start()).url;
    void (async () => {
      while (traffic) {
        const res = await fetch(`${url}/v2/models/double/infer`, {
          method: 'POST',
          body: JSON.stringify(rowsInput([[sent, 1, 2, 3]])),
        });
        await res.arrayBuffer();
        sent++;
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 60_000);

  afterAll(async () => {
    traffic = false;
    await browser?.close();
    await server?.stop();
  });

  it('loads while requests run: numbers move, an injected alert appears, anomalies are marked; screenshot saved', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/dashboard`);
    await page.waitForSelector('#connection.on', { timeout: 10_000 });
    const total = async () => Number(await page.textContent('#stat-total-requests'));
    await page.waitForFunction(
      () => Number(document.querySelector('#stat-total-requests')?.textContent) > 0,
      undefined,
      { timeout: 10_000 },
    );
    const first = await total();
    await page.waitForFunction((n) => Number(document.querySelector('#stat-total-requests')?.textContent) > n, first, {
      timeout: 10_000,
    });
    expect(await total()).toBeGreaterThan(first);
    expect(Number(await page.textContent('#stat-rate'))).toBeGreaterThan(0);
    await expect
      .poll(async () => (await page.textContent('#models tbody'))?.includes('ready'), { timeout: 5_000 })
      .toBe(true);
    // The models table's per-model rate moves with the traffic (model.<m>.rate).
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('#models tbody tr')].some(
          (tr) => tr.children[0]?.textContent === 'double' && Number(tr.children[3]?.textContent) > 0,
        ),
      undefined,
      { timeout: 10_000 },
    );

    // A round as a federation coordinator reports it (its TaskManager on whale.metrics), not names typed here.
    await new TaskManager('double', messaging.bus, silentLogger).metrics(1, {
      round_test_accuracy: 0.91,
      round_received: 10,
    });
    ext.performance.recordFederationRound('double', { round: 2, accuracy: 0.93, clients: 10 });

    ext.alerts.raise('injected-test-alert', { severity: 'critical', message: 'injected by the browser test' });
    await page.waitForSelector('#alerts-active li[data-rule="injected-test-alert"]', { timeout: 5_000 });
    expect(await page.textContent('#alerts-active')).toContain('injected by the browser test');
    expect(await page.textContent('#stat-alerts')).toBe('1');

    await page.waitForSelector('#anomalies li', { timeout: 10_000 });
    expect(await page.textContent('#anomalies')).toContain('requests.rate');
    for (const id of ['rate', 'latency', 'batch', 'queue', 'cache', 'federation', 'devices', 'memory']) {
      await page.waitForSelector(`#chart-${id} canvas`, { timeout: 5_000 });
    }
    await page.waitForFunction(
      () => (document.querySelector('#chart-federation')?.textContent ?? '').includes('federation.accuracy.double'),
      undefined,
      { timeout: 5_000 },
    );

    ext.alerts.clear('injected-test-alert');
    await page.waitForFunction(() => document.querySelectorAll('#alerts-active li').length === 0, undefined, {
      timeout: 5_000,
    });
    expect(await page.textContent('#alerts-recent')).toContain('resolved');
    ext.alerts.raise('injected-test-alert', { severity: 'critical', message: 'injected by the browser test' });
    await page.waitForSelector('#alerts-active li[data-rule="injected-test-alert"]', { timeout: 5_000 });

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    expect(errors).toEqual([]);
  }, 60_000);
});
