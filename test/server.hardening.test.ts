// Hardening round 2 (issue 23, items 1-7 and 16), from outside: a running server (the routing and resources
// extensions `whale start` adds) attacked over HTTP with its limits set small, the event loop timed through
// /v2/health/live while the attack runs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { DEFAULT_BATCHING, parseConfig } from '../src/config/whale-config.js';
import { TaskScheduler } from '../src/core/processing/task-scheduler.js';
import { ResourceExtension } from '../src/server/extensions/resources.js';
import { qualityRoutingExtension } from '../src/server/extensions/routing.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { heldRequest, openSocket, rawRequest, whenClosed, whileProbing } from './support/attack.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

const KiB = 1024;
const LIMITS = {
  port: 0,
  maxBodyBytes: 256 * KiB,
  maxBodyBytesInFlight: 1024 * KiB,
  requestTimeoutMs: 1500,
  headersTimeoutMs: 800,
  keepAliveTimeoutMs: 400,
  maxConnections: 40,
  maxJsonDepth: 64,
  maxDiscardBytes: 24 * 1024 * KiB,
  evaluate: { maxBodyBytes: 128 * KiB, schemaTimeoutMs: 300 },
};

describe('hardening round 2: a server attacked over HTTP', () => {
  let server: WhaleServer;
  let url: string;
  const operator = createApiKey('operator');
  const asOperator = { authorization: `Bearer ${operator.key}` };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-hardening-'));
    const routingFile = join(dir, 'whale.routing.json');
    writeFileSync(
      routingFile,
      JSON.stringify({ tasks: { digits: { arms: [{ model: 'small' }, { model: 'large' }] } }, sampleEveryMs: 100 }),
    );
    const config = parseConfig(
      {
        http: LIMITS,
        models: ['small', 'large'].map((name) => ({ name, adapter: 'onnx', path: `/unused/${name}.onnx` })),
        tenants: { gold: 2 },
        shutdownGraceMs: 1000,
        auth: { keys: [operator.record] },
      },
      '/',
    );
    const messaging = new MessagingService({
      bus: new LocalBus(),
      store: new MemoryStateStore(),
      nodeId: 'hardening',
      logger: silentLogger,
    });
    server = new WhaleServer({
      config,
      messaging,
      models: [scaleModel('small', 1).model, scaleModel('large', 2).model],
      logger: silentLogger,
      serverVersion: 'test',
      extensions: [
        qualityRoutingExtension(config, { WHALE_ROUTING: routingFile }),
        new ResourceExtension(config, {}, { gpus: [], gpuBackend: 'host' }),
      ],
    });
    ({ url } = await server.start());
  });
  afterAll(() => server?.stop());

  const task = (json: unknown, headers: Record<string, string> = {}) =>
    http(`${url}/v1/tasks/digits/infer`, {
      method: 'POST',
      body: JSON.stringify(json),
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('item 1: ids, sessions and tenants longer than 256 characters are 400 on every route that keeps them', async () => {
    const long = 'x'.repeat(257);
    const ok = 'y'.repeat(256);
    expect((await task({ id: ok, ...rowsInput([[1, 2, 3, 4]]) })).status).toBe(200);
    for (const [what, body] of [
      ['id', { id: long, ...rowsInput([[1, 2, 3, 4]]) }],
      ['parameters.session', { ...rowsInput([[1, 2, 3, 4]]), parameters: { session: long } }],
    ] as const) {
      const r = await task(body);
      expect(r.status, what).toBe(400);
      expect(r.body.field, what).toBe(what);
    }
    const v2 = await http(`${url}/v2/models/small/infer`, { json: { id: long, ...rowsInput([[1, 2, 3, 4]]) } });
    expect(v2.status).toBe(400);
    expect(v2.body.field).toBe('id');
    const tenant = await task({ ...rowsInput([[1, 2, 3, 4]]), parameters: { tenant: long } }, asOperator);
    expect(tenant.status).toBe(400);
    expect(tenant.body.field).toBe('parameters.tenant');
    // A 4 MiB id (the reported crash) is refused by the body limit before it is parsed, a 200 KiB one by the id limit.
    expect((await task({ id: 'z'.repeat(200 * KiB), ...rowsInput([[1, 2, 3, 4]]) })).status).toBe(400);
  });

  it('item 2: /v1/evaluate has its own body limit; the consistency score is linear; a backtracking pattern is cut at its time bound off the main thread', async () => {
    const big = await http(`${url}/v1/evaluate`, { json: { response: 'a '.repeat(70 * KiB) } });
    expect(big.status).toBe(413);
    // 120 KiB of near-identical sentences: the pairwise score compared every pair (quadratic, 5 s at 213 KiB).
    const sentences = Array.from({ length: 6000 }, (_, i) => `the cat sat ${i % 2 ? 'not ' : ''}here ${i % 7}.`).join(
      ' ',
    );
    const { result: consistent, worstLiveMs: liveA } = await whileProbing(url, async () => {
      const t0 = performance.now();
      const r = await http(`${url}/v1/evaluate`, {
        json: { response: sentences.slice(0, 120 * KiB), context: { context: sentences.slice(0, 4 * KiB) } },
      });
      return { ...r, ms: performance.now() - t0 };
    });
    expect(consistent.status).toBe(200);
    expect(consistent.body.scores.consistency).toBeGreaterThanOrEqual(0);
    expect(consistent.ms).toBeLessThan(1500);
    expect(liveA).toBeLessThan(1500);
    // ^(a+)+$ on 30 a's and '!': 5.8 s of catastrophic backtracking on the main thread before.
    const { result: evil, worstLiveMs: liveB } = await whileProbing(url, async () => {
      const t0 = performance.now();
      const r = await http(`${url}/v1/evaluate`, {
        json: {
          response: JSON.stringify('a'.repeat(30) + '!'),
          requirements: { schema: { type: 'string', pattern: '^(a+)+$' } },
        },
      });
      return { ...r, ms: performance.now() - t0 };
    });
    expect(evil.status).toBe(400);
    expect(evil.body.field).toBe('requirements.schema');
    expect(evil.body.error).toMatch(/within 300 ms/);
    expect(evil.ms).toBeLessThan(2000);
    expect(liveB).toBeLessThan(200);
    // The validator works again right after (a fresh worker).
    const fine = await http(`${url}/v1/evaluate`, {
      json: { response: '"aaa"', requirements: { schema: { type: 'string', pattern: '^(a+)+$' } } },
    });
    expect(fine.status).toBe(200);
    expect(fine.body.scores.schemaValid).toBe(1);
  });

  it('item 3: a schema $id is per request: no "already exists", no $ref into another client\'s schema', async () => {
    const mine = { $id: 'https://example.test/s.json', type: 'string' };
    const theirs = { $id: 'https://example.test/s.json', type: 'number' };
    const a = await http(`${url}/v1/evaluate`, { json: { response: '"text"', requirements: { schema: mine } } });
    expect(a.status).toBe(200);
    expect(a.body.scores.schemaValid).toBe(1);
    const b = await http(`${url}/v1/evaluate`, { json: { response: '"text"', requirements: { schema: theirs } } });
    expect(b.status, JSON.stringify(b.body)).toBe(200);
    expect(b.body.scores.schemaValid).toBe(0);
    const c = await http(`${url}/v1/evaluate`, {
      json: { response: '"text"', requirements: { schema: { $ref: 'https://example.test/s.json' } } },
    });
    expect(c.status).toBe(400);
    expect(c.body.error).toMatch(/can't resolve reference|resolve/i);
  });

  it('item 4: made-up tenants leave no state and never lock others out', async () => {
    // 300 one-off tenant names through an operator key (anonymous clients cannot name one), then the configured one.
    for (let i = 0; i < 300; i++) {
      const r = await task(
        { ...rowsInput([[1, 2, 3, i]]), parameters: { tenant: `made-up-${i}-${'t'.repeat(200)}` } },
        asOperator,
      );
      expect(r.status).toBe(200);
    }
    expect((await task({ ...rowsInput([[1, 2, 3, 4]]), parameters: { tenant: 'gold' } }, asOperator)).status).toBe(200);
    // The lockout ("more than N distinct tenants") is gone: a scheduler whose configured-tenant cap is 2 takes 5000 names.
    const s = new TaskScheduler({
      engine: 'reference',
      executor: async (_m, inputs) => inputs,
      models: { m: { ...DEFAULT_BATCHING, maxQueueSize: 10_000 } },
      tenants: { a: 1, b: 1 },
      maxTenants: 2,
    });
    const answers = await Promise.all(
      Array.from({ length: 5000 }, (_, i) => s.scheduleTask({ model: 'm', input: i, tenant: `t${i}` })),
    );
    expect(answers[4999]).toBe(4999);
    await s.drain(0);
  });

  it('item 5: feedback naming a model (or version) this node does not serve is 404 and grows nothing', async () => {
    // Feedback naming a model (not joined to an answer of this node) needs an operator key (item 8); even then
    // the model must be one this node serves.
    const feedback = (json: unknown) =>
      http(`${url}/v1/feedback`, {
        method: 'POST',
        body: JSON.stringify(json),
        headers: { 'content-type': 'application/json', ...asOperator },
      });
    const real = await feedback({ requestId: 'fb-real', model: 'small', thumbs: 'up' });
    expect(real.status).toBe(202);
    for (let i = 0; i < 200; i++) {
      const r = await feedback({ requestId: `fb-${i}`, model: `made-up-${i}`, thumbs: 'down' });
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('ERR_MODEL_NOT_FOUND');
    }
    expect((await feedback({ requestId: 'fb-v', model: 'small', version: '99', thumbs: 'down' })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 250)); // two quality samples
    const routing = await http(`${url}/v1/routing`);
    const models = new Set((routing.body.quality as { model: string }[]).map((p) => p.model));
    expect(
      [...models].every((m) => m === 'small' || m === 'large'),
      [...models].join(','),
    ).toBe(true);
  });

  it('item 6: bodies past the server-wide byte budget get 503 with Retry-After before they are sent; the budget comes back', async () => {
    const size = 200 * KiB; // 5 fit the 1 MiB budget
    const held = Array.from({ length: 8 }, () => heldRequest(url, '/v2/models/small/infer', size));
    const early = await Promise.all(
      held.map((h) =>
        Promise.race([h.answer.then((a) => a.status), new Promise<number>((r) => setTimeout(() => r(0), 500))]),
      ),
    );
    const refused = early.filter((s) => s === 503).length;
    expect(refused).toBe(3);
    const refusedAnswer = await held[early.indexOf(503)]!.answer;
    expect(refusedAnswer.headers['retry-after']).toBe('1');
    expect(JSON.parse(refusedAnswer.body).code).toBe('ERR_OVERLOADED');
    // The admitted ones finish (a valid body padded with spaces to its declared size) and are answered.
    const body = JSON.stringify(rowsInput([[1, 2, 3, 4]]));
    for (const h of held) h.send(Buffer.from(body.padEnd(size, ' ')));
    const finals = await Promise.all(held.map((h) => h.answer.then((a) => a.status)));
    expect(finals.filter((s) => s === 200).length).toBe(5);
    expect(server.http.bodyBudget.used).toBe(0);
    expect((await http(`${url}/v2/models/small/infer`, { json: rowsInput([[1, 2, 3, 4]]) })).status).toBe(200);
  });

  it('item 7: an idle connection is closed at the headers timeout, a slow body at the request timeout, an idle keep-alive at its timeout', async () => {
    const idle = await openSocket(url);
    const closedIdle = await whenClosed(idle);
    expect(closedIdle.ms).toBeLessThan(800 + 600);
    const slow = await openSocket(url);
    const slowClosed = whenClosed(slow);
    slow.write(
      'POST /v2/models/small/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{',
    );
    const drip = setInterval(() => slow.writable && slow.write(' '), 100);
    const s = await slowClosed;
    clearInterval(drip);
    expect(s.ms).toBeLessThan(1500 + 700);
    expect(s.data).toMatch(/^HTTP\/1\.1 408/);
    const ka = await openSocket(url);
    const kaClosed = whenClosed(ka);
    ka.write('GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n');
    const k = await kaClosed;
    expect(k.data).toMatch(/^HTTP\/1\.1 200/);
    expect(k.ms).toBeLessThan(400 + 1000 + 600); // Node 20 keeps an idle keep-alive socket ~1 s past keepAliveTimeout
  });

  it('item 7: past http.maxConnections a new connection gets a 503 with Retry-After and is closed; others are served again after', async () => {
    const sockets = await Promise.all(Array.from({ length: LIMITS.maxConnections }, () => openSocket(url)));
    try {
      const over = await rawRequest(url, 'GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n');
      expect(over.status).toBe(503);
      expect(over.headers['retry-after']).toBe('1');
      expect(JSON.parse(over.body).error).toMatch(/maxConnections/);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect((await http(`${url}/v2/health/live`)).status).toBe(200);
  });

  it('item 16: bad percent-encoding is 400 on the V2, task and quota routes', async () => {
    for (const [method, path, headers] of [
      ['POST', '/v2/models/%E0%A4%A/infer', {}],
      ['GET', '/v2/models/%ZZ', {}],
      ['POST', '/v1/tasks/%E0%A4%A/infer', {}],
      ['PUT', '/v1/resources/quotas/%E0%A4%A', asOperator],
    ] as const) {
      const r = await http(`${url}${path}`, { method, body: method === 'GET' ? undefined : '{}', headers });
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(400);
    }
  });

  it('item 16: JSON nested 100 000 deep is a 400 naming the limit, not a stack overflow', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000); // (200 000 deep was reported; this fits the test's 256 KiB body limit)
    const r = await http(`${url}/v2/models/small/infer`, {
      method: 'POST',
      body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":${deep}}]}`,
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/nested deeper than 64/);
  });

  it('item 16: a client that sends a whole oversized body before reading gets the 413 (not a broken pipe)', async () => {
    const body = Buffer.alloc(16 * 1024 * KiB + 1, 0x20);
    const r = await rawRequest(
      url,
      `POST /v2/models/small/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
      body,
    );
    expect(r.writeError).toBeUndefined();
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).code).toBe('ERR_PAYLOAD_TOO_LARGE');
  });
});
