// Hardening round 2 (issue 23, items 1 and 6) against `whale start` in a child process, as the attacker saw it:
// the server's resident memory (/proc/<pid>/status VmRSS) and its event loop (GET /v2/health/live) while
// requests with huge ids and bursts of large bodies arrive. Limits are scaled down (4 MiB bodies, 16 MiB budget).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { until } from './helpers.js';
import { heldRequest, liveMs, rssMiB } from './support/attack.js';

const root = resolve(import.meta.dirname, '..');
const MiB = 1024 * 1024;
const input = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] };

describe('whale start under attack (child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'whale-attack-'));
  let child: ReturnType<typeof spawn>;
  let url = '';
  let out = '';

  beforeAll(async () => {
    const config = join(dir, 'whale.config.json');
    writeFileSync(config, JSON.stringify({ http: { port: 0, maxBodyBytes: 4 * MiB, maxBodyBytesInFlight: 16 * MiB } }));
    child = spawn(process.execPath, [join(root, 'bin', 'whale.js'), 'start', '--config', config], {
      cwd: dir,
      env: { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '' },
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await until(() => /on http:\/\/[\d.]+:\d+/.test(out) || child.exitCode !== null, 30_000), out).toBe(true);
    url = /on (http:\/\/[\d.]+:\d+)/.exec(out)![1]!;
  }, 40_000);
  afterAll(async () => {
    child?.kill('SIGINT');
    await new Promise((r) => (child?.exitCode === null ? child.once('exit', r) : r(undefined)));
  });

  const post = async (path: string, body: string) => {
    const r = await fetch(`${url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    return { status: r.status, text: await r.text() };
  };

  it('item 1: huge ids are 400 and never kept; 1500 answered requests with maximal ids leave RSS within bounds', async () => {
    for (let i = 0; i < 5; i++)
      expect((await post('/v1/tasks/mnist/infer', JSON.stringify({ id: `warm-${i}`, ...input }))).status).toBe(200);
    const base = rssMiB(child.pid!);
    // The reported crash: ids of megabytes, each answered 200 and kept in two maps. Now each is a 400.
    const huge = 'i'.repeat(MiB);
    for (let i = 0; i < 40; i++) {
      const r = await post('/v1/tasks/mnist/infer', JSON.stringify({ id: `${i}-${huge}`, ...input }));
      expect(r.status).toBe(400);
    }
    // Ids at the limit (256 characters), all different, 8 at a time.
    let worstLive = 0;
    for (let i = 0; i < 1500; i += 8) {
      const batch = Array.from({ length: 8 }, (_, k) =>
        post('/v1/tasks/mnist/infer', JSON.stringify({ id: `${i + k}`.padEnd(256, 'q'), ...input })),
      );
      const statuses = (await Promise.all(batch)).map((r) => r.status);
      expect(statuses.every((s) => s === 200)).toBe(true);
      if (i % 200 === 0) worstLive = Math.max(worstLive, await liveMs(url));
    }
    const after = rssMiB(child.pid!);
    console.log(
      `item 1: RSS ${base.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after 40 x 1 MiB ids + 1500 x 256-char ids; worst /v2/health/live ${worstLive.toFixed(0)} ms`,
    );
    expect(after - base).toBeLessThan(150);
    expect(worstLive).toBeLessThan(500);
  }, 120_000);

  it('items 2 and 3: a 256 KiB quadratic /v1/evaluate body and a backtracking pattern leave the event loop free; 1500 schemas leave no cache behind', async () => {
    const sentences = Array.from({ length: 20_000 }, (_, i) => `the cat sat ${i % 2 ? 'not ' : ''}here ${i % 7}.`).join(
      ' ',
    );
    const text = sentences.slice(0, 220 * 1024); // with the context below, just under the 256 KiB limit of /v1/evaluate
    let worstLive = 0;
    const probe = setInterval(() => void liveMs(url).then((ms) => (worstLive = Math.max(worstLive, ms))), 20);
    const t0 = performance.now();
    const heavy = await post(
      '/v1/evaluate',
      JSON.stringify({ response: text, context: { context: text.slice(0, 30_000) } }),
    );
    const heavyMs = performance.now() - t0;
    const evil = await post(
      '/v1/evaluate',
      JSON.stringify({
        response: JSON.stringify('a'.repeat(32) + '!'),
        requirements: { schema: { type: 'string', pattern: '^(a+)+$' } },
      }),
    );
    clearInterval(probe);
    console.log(
      `item 2: 250 KiB evaluate body answered ${heavy.status} in ${heavyMs.toFixed(0)} ms, backtracking pattern ${evil.status}; worst /v2/health/live ${worstLive.toFixed(0)} ms`,
    );
    expect(heavy.status).toBe(200);
    expect(evil.status).toBe(400);
    expect(worstLive).toBeLessThan(250);
    // The same schema 1500 times (each request a new object: the shared Ajv used to keep every one).
    const schema = {
      type: 'object',
      properties: { a: { type: 'string', pattern: '^[a-z]+$' }, b: { type: 'array', items: { type: 'number' } } },
      required: ['a'],
    };
    for (let i = 0; i < 50; i++)
      await post(
        '/v1/evaluate',
        JSON.stringify({ response: JSON.stringify({ a: 'x', b: [i] }), requirements: { schema } }),
      );
    const base = rssMiB(child.pid!);
    for (let i = 0; i < 1500; i += 4) {
      const rs = await Promise.all(
        Array.from({ length: 4 }, (_, k) =>
          post(
            '/v1/evaluate',
            JSON.stringify({
              response: JSON.stringify({ a: 'x', b: [i + k] }),
              requirements: { schema: { ...schema, $id: `https://c${(i + k) % 7}.test/s` } },
            }),
          ),
        ),
      );
      expect(rs.every((r) => r.status === 200)).toBe(true);
    }
    const after = rssMiB(child.pid!);
    console.log(`item 3: RSS ${base.toFixed(0)} -> ${after.toFixed(0)} MiB over 1500 schema evaluations`);
    expect(after - base).toBeLessThan(40);
  }, 90_000);

  it('item 6: a burst of 24 bodies of 3.9 MiB: past the 16 MiB budget they get 503 + Retry-After unread, every one is answered, RSS comes back', async () => {
    const base = rssMiB(child.pid!);
    const size = Math.floor(3.9 * MiB);
    const body = Buffer.from(JSON.stringify(input).padEnd(size, ' '));
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(child.pid!))), 20);
    const t0 = performance.now();
    const held = Array.from({ length: 24 }, () => heldRequest(url, '/v2/models/mnist/infer', size));
    await new Promise((r) => setTimeout(r, 300)); // every request's headers are in: the server decided on each
    const live = await liveMs(url);
    for (const h of held) h.send(body);
    const answers = await Promise.all(held.map((h) => h.answer));
    const ms = performance.now() - t0;
    clearInterval(sampler);
    const statuses = answers.map((a) => a.status);
    const refused = answers.filter((a) => a.status === 503);
    console.log(
      `item 6: ${statuses.filter((s) => s === 200).length} x 200, ${refused.length} x 503 in ${ms.toFixed(0)} ms; RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; /v2/health/live ${live.toFixed(0)} ms during the burst`,
    );
    expect(
      statuses.every((s) => s === 200 || s === 503),
      statuses.join(','),
    ).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBe(4); // 4 x 3.9 MiB fit the 16 MiB budget
    expect(refused.every((a) => a.headers['retry-after'] === '1')).toBe(true);
    expect(peak - base).toBeLessThan(250);
    expect(live).toBeLessThan(500);
    // Released afterwards: within 1.5x of the baseline once the burst is over.
    let now = rssMiB(child.pid!);
    await until(() => (now = rssMiB(child.pid!)) < 1.5 * base, 15_000);
    console.log(`item 6: RSS ${now.toFixed(0)} MiB after the burst (baseline ${base.toFixed(0)})`);
    expect(now).toBeLessThan(1.5 * base);
    expect((await post('/v2/models/mnist/infer', JSON.stringify(input))).status).toBe(200);
  }, 60_000);
});
