// Alerts in a running node (issue 20, "Alerts"): `whale start`'s server with its default extensions, a
// whale.config.json with threshold rules, traffic that breaches them; the alerts are then on GET /v1/alerts,
// on /dashboard (headless Chromium), on /metrics (whale_alerts_firing) and on the bus (`resource.alert` for a
// resource figure, `alert.firing` for a serving figure).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { defaultExtensions } from '../src/server/default-extensions.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { until } from './helpers.js';
import { http } from './support/serving.js';

const CHROMIUM = '/usr/bin/chromium';

interface BusEvent {
  type: string;
  data: { rule?: string; state?: string; severity?: string; message?: string };
}

describe('whale start: threshold rules from whale.config.json fire', () => {
  const dir = mkdtempSync(join(tmpdir(), 'whale-alerts-'));
  const bus = new LocalBus();
  const events: BusEvent[] = [];
  let server: WhaleServer;
  let url: string;
  let browser: Browser | undefined;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/ensure-toolchain.sh (npm test does)`).toBe(true);
    const config = parseConfig(
      {
        http: { port: 0 },
        resources: { intervalMs: 200 },
        alerts: {
          rules: [
            {
              name: 'mnist-rows',
              metric: 'models.mnist.rows',
              comparison: '>=',
              value: 3,
              severity: 'critical',
              message: 'mnist served {value} rows',
            },
            { name: 'serving-traffic', metric: 'requests.rate', comparison: '>', value: 0, severity: 'info' },
          ],
        },
        shutdownGraceMs: 1_000,
      },
      '/',
    );
    const env = { WHALE_METRICS_DB: 'off', WHALE_CACHE_DIR: dir };
    const messaging = new MessagingService({
      bus,
      store: new MemoryStateStore(),
      nodeId: 'alert-node',
      logger: silentLogger,
    });
    await bus.subscribe('whale.events', (m) => void events.push(m.payload as BusEvent), { group: 'test' });
    server = new WhaleServer({
      config,
      messaging,
      logger: silentLogger,
      serverVersion: 'test',
      env,
      extensions: await defaultExtensions(config, env),
    });
    ({ url } = await server.start());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a breach shows on /v1/alerts, /metrics, the bus and /dashboard', async () => {
    const meta = await http(`${url}/v2/models/mnist`);
    const input = meta.body.inputs[0] as { name: string; shape: number[] };
    const width = input.shape[input.shape.length - 1]!;
    for (let i = 0; i < 4; i++) {
      const r = await http(`${url}/v2/models/mnist/infer`, {
        method: 'POST',
        json: {
          inputs: [{ name: input.name, datatype: 'FP32', shape: [1, width], data: new Array(width).fill(i / 10) }],
        },
      });
      expect(r.status).toBe(200);
    }

    // The alerts endpoint: the resource rule fires (critical, its message filled in).
    const firing = async () => ((await http(`${url}/v1/alerts`)).body.active as { rule: string }[]).map((a) => a.rule);
    expect(await until(async () => (await firing()).includes('mnist-rows'), 15_000)).toBe(true);
    const { body } = await http(`${url}/v1/alerts`);
    expect(body.active.find((a: { rule: string }) => a.rule === 'mnist-rows')).toMatchObject({
      severity: 'critical',
      state: 'firing',
      message: expect.stringMatching(/^mnist served \d+ rows$/),
    });
    expect(body.rules.map((r: { name: string }) => r.name)).toEqual(
      expect.arrayContaining(['mnist-rows', 'serving-traffic']),
    );

    // The bus: resource.alert for the resource figure, alert.firing for the serving figure.
    expect(
      await until(
        () =>
          events.some(
            (e) => e.type === 'resource.alert' && e.data.rule === 'mnist-rows' && e.data.state === 'firing',
          ) && events.some((e) => e.type === 'alert.firing' && e.data.rule === 'serving-traffic'),
        15_000,
      ),
    ).toBe(true);
    // One engine shows both: the serving rule's event is on /v1/alerts too (it may have resolved since).
    const recent = (await http(`${url}/v1/alerts`)).body.recent as { rule: string }[];
    expect(recent.map((a) => a.rule)).toEqual(expect.arrayContaining(['mnist-rows', 'serving-traffic']));

    // /metrics: the monitoring engine counts the mirrored resource alert.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/whale_alerts_firing\{[^}]*rule="mnist-rows"[^}]*\} 1/);

    // /dashboard in Chromium: the alert is in the active list.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const page = await browser.newPage();
    await page.goto(`${url}/dashboard`);
    await page.waitForSelector('#alerts-active li[data-rule="mnist-rows"]', { timeout: 10_000 });
    expect(await page.textContent('#alerts-active')).toMatch(/\[critical\] mnist-rows: mnist served \d+ rows/);
    expect(Number(await page.textContent('#stat-alerts'))).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
