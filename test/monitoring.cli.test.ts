/** `whale start` (the built CLI, as users run it) serves /metrics, /healthz and /dashboard beside the V2 endpoints. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { until } from './helpers.js';

const whale = join(import.meta.dirname, '..', 'bin', 'whale.js');

describe('whale start with monitoring', () => {
  it('answers GET /metrics, /healthz and /dashboard, and keeps its metric history in WHALE_METRICS_DB', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-cli-mon-'));
    const env = {
      ...process.env,
      KAFKA_BROKERS: '',
      REDIS_URL: '',
      WHALE_LOG_LEVEL: 'warn',
      WHALE_CONFIG: '',
      WHALE_CACHE_DIR: dir,
      WHALE_METRICS_DB: join(dir, 'm.db'),
    };
    const child = spawn(process.execPath, [whale, 'start', '--port', '0'], { cwd: dir, env });
    let out = '',
      err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    try {
      expect(await until(() => /on (http:\/\/[\d.]+:\d+)/.test(out), 40_000), err).toBe(true);
      const url = /on (http:\/\/[\d.]+:\d+)/.exec(out)![1]!;
      const input = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array(784).fill(0) }] };
      expect(
        (await fetch(`${url}/v2/models/mnist/infer`, { method: 'POST', body: JSON.stringify(input) })).status,
      ).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^whale_requests_total\{model="mnist",version="1",level="normal",outcome="ok"\} 1$/m);
      expect(metrics).toMatch(/^whale_model_state\{model="mnist",version="1",state="ready"\} 1$/m);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { status: string }).status).toBe('ok');
      const page = await fetch(`${url}/dashboard`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script src="/dashboard/assets/dashboard.js"></script>');
      expect(
        await until(async () => {
          const h = await fetch(`${url}/dashboard/api/history?series=requests.rate&from=0&resolution=raw`);
          return h.status === 200 && ((await h.json()) as { rows: unknown[] }).rows.length > 0;
        }, 10_000),
      ).toBe(true);
    } finally {
      child.kill('SIGINT');
      expect(await exited, err).toBe(0);
    }
    expect(out).toContain('smart-whale: stopped');
  }, 90_000);
});
