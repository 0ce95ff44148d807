/**
 * A request whose client goes away before its answer is dropped from the queue (it never runs), and the
 * requests of a keep-alive connection that stays open are not: the HTTP server's one abort signal per
 * connection (transport/connection-signal.ts), driven from outside over real sockets.
 */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { until } from './helpers.js';
import { rowsInput, scaleModel, startTestServer, type TestServer } from './support/serving.js';

describe('HTTP infer: cancelled when the client goes away', () => {
  let gate: (() => void) | undefined;
  const slow = scaleModel('slow', 2, {
    onBatch: () => (gate === undefined ? new Promise<void>((resolve) => (gate = resolve)) : undefined),
  });
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer([slow.model], { slow: { batching: { maxBatchSize: 1, maxQueueDelayUs: 0 } } });
  });
  afterAll(() => t?.stop());

  const post = (agent: Agent | undefined, body: unknown) => {
    const text = JSON.stringify(body);
    const { port } = new URL(t.url);
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/v2/models/slow/infer',
      method: 'POST',
      ...(agent ? { agent } : {}),
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    });
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (m) => {
        let b = '';
        m.on('data', (c: Buffer) => (b += c.toString()));
        m.on('end', () => resolve({ status: m.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
    });
    req.end(text);
    return { req, answered };
  };

  it('a queued request whose connection closes never runs; the others are answered', async () => {
    const stats = () => t.server.scheduler.stats().models.slow!;
    const a = post(undefined, rowsInput([[1, 1, 1, 1]])); // runs and blocks in the model
    await until(() => slow.calls.batches === 1, 10_000);
    const b = post(undefined, rowsInput([[2, 2, 2, 2]])); // queued behind it
    b.answered.catch(() => undefined);
    await until(() => stats().queued === 1, 10_000);
    b.req.destroy(); // the client goes away
    await until(() => stats().cancelled === 1, 10_000);
    gate!();
    expect((await a.answered).status).toBe(200);
    const c = post(undefined, rowsInput([[3, 3, 3, 3]]));
    expect((await c.answered).status).toBe(200);
    expect(slow.calls.rows).toEqual([1, 1]); // a and c ran; b did not
  });

  it('twelve pipelined requests on one connection are all answered, with no max-listeners warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const { port } = new URL(t.url);
    const socket = connect(Number(port), '127.0.0.1');
    try {
      const body = JSON.stringify(rowsInput([[1, 2, 3, 4]]));
      const one = `POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      let got = '';
      socket.on('data', (c: Buffer) => (got += c.toString()));
      socket.write(one.repeat(12));
      await until(() => (got.match(/HTTP\/1\.1 200/g) ?? []).length === 12, 10_000);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      socket.destroy();
      process.off('warning', onWarning);
    }
  });

  it('requests after one another on a keep-alive connection are all answered', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      for (let i = 0; i < 5; i++) {
        const r = post(agent, rowsInput([[i, i, i, i]]));
        r.req.on('socket', (s) => sockets.add(s));
        const answer = await r.answered;
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body).outputs[0].data).toEqual([2 * i, 2 * i, 2 * i, 2 * i]);
      }
      expect(sockets.size).toBe(1); // one connection, its signal never aborted
    } finally {
      agent.destroy();
    }
  });
});
