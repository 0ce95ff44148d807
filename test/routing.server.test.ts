// A running server with the quality-routing extension (built by the factory `whale start` uses, routing file from
// $WHALE_ROUTING) takes feedback over HTTP and the bus topic and shifts a task's traffic to the model users like.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseConfig } from '../src/config/whale-config.js';
import { silentLogger } from '../src/common/logger.js';
import { FEEDBACK_TOPIC, publishFeedback } from '../src/core/federation/routing/feedback-topic.js';
import { qualityRoutingExtension, type QualityRoutingExtension } from '../src/server/extensions/routing.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { createEnvelope } from '../src/transport/envelope.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { dlqTopic } from '../src/transport/bus.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { until } from './helpers.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

describe('whale start routing: feedback over HTTP and the bus shifts traffic', () => {
  let server: WhaleServer;
  let ext: QualityRoutingExtension;
  let url: string;
  const bus = new LocalBus();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-routing-'));
    const routingFile = join(dir, 'whale.routing.json');
    writeFileSync(
      routingFile,
      JSON.stringify({
        tasks: { digits: { arms: [{ model: 'small' }, { model: 'large' }] } },
        bandit: { alpha: 0.3, maxExploreShare: 0.2, discount: 0.9, seed: 3 },
        reward: { latency: 0 },
      }),
    );
    const config = parseConfig(
      {
        http: { port: 0 },
        models: ['small', 'large'].map((name) => ({ name, adapter: 'onnx', path: `/unused/${name}.onnx` })),
        shutdownGraceMs: 2000,
      },
      '/',
    );
    ext = qualityRoutingExtension(config, { WHALE_ROUTING: routingFile });
    const messaging = new MessagingService({
      bus,
      store: new MemoryStateStore(),
      nodeId: 'routing-node',
      logger: silentLogger,
    });
    server = new WhaleServer({
      config,
      messaging,
      models: [scaleModel('small', 1).model, scaleModel('large', 2).model],
      logger: silentLogger,
      extensions: [ext],
    });
    ({ url } = await server.start());
  });
  afterAll(() => server.stop());

  async function ask(i: number) {
    const r = await http(`${url}/v1/tasks/digits/infer`, { json: { id: `req-${i}`, ...rowsInput([[1, 2, 3, i]]) } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as {
      id: string;
      model_name: string;
      parameters: { feedback_id: string };
      outputs: { data: number[] }[];
    };
  }

  it('routes, joins feedback from both channels, and moves the traffic to the model users like', async () => {
    const answered: string[] = [];
    let viaBus = 0;
    let sent = 0;
    const phase = async (from: number, count: number, liked: string) => {
      for (let i = from; i < from + count; i++) {
        const a = await ask(i);
        expect(a.id).toBe(`req-${i}`);
        expect(a.outputs[0]!.data[3]).toBe(a.model_name === 'large' ? 2 * i : i); // the model that answered really ran
        answered.push(a.model_name);
        const feedback = {
          requestId: a.parameters.feedback_id,
          thumbs: a.model_name === liked ? ('up' as const) : ('down' as const),
        };
        if (i % 2 === 0) {
          const f = await http(`${url}/v1/feedback`, { json: feedback });
          expect(f.status).toBe(202);
          expect(f.body).toMatchObject({
            accepted: true,
            joined: true,
            route: { model: a.model_name, version: '1', task: 'digits' },
          });
        } else {
          await publishFeedback(bus, 'test-client', feedback);
          viaBus++;
        }
        sent++;
        // The bus delivers asynchronously: let the feedback land before the next request, as a user's pace would.
        await until(() => counted() === sent, 2000);
      }
    };
    const counted = () =>
      ['large', 'small'].reduce((n, m) => n + ext.components.analyzer.stats(m).current.thumbsUpRate.n, 0);
    const shareOf = (model: string, list: string[]) => list.filter((m) => m === model).length / list.length;

    await phase(0, 80, 'small');
    expect(shareOf('small', answered.slice(-30))).toBeGreaterThan(0.8);
    await phase(80, 120, 'large');
    expect(shareOf('large', answered.slice(-40))).toBeGreaterThan(0.8);
    expect(viaBus).toBe(100);
    expect(counted()).toBe(200);

    const routing = await http(`${url}/v1/routing`);
    const arms = routing.body.tasks[0].arms as { model: string; decisions: number }[];
    expect(arms.map((a) => a.model).sort()).toEqual(['large', 'small']);
    expect(arms.reduce((n, a) => n + a.decisions, 0)).toBe(200);
  });

  it('bad feedback: HTTP answers a typed error, the topic dead-letters it with the reason', async () => {
    const bad = await http(`${url}/v1/feedback`, { json: { requestId: 'req-1', rating: 9 } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'ERR_INVALID_ARG', field: 'feedback.rating' });
    const unknown = await http(`${url}/v1/feedback`, { json: { requestId: 'never-seen', thumbs: 'up' } });
    expect(unknown.status).toBe(404);
    const dead: string[] = [];
    const sub = await bus.subscribe(
      dlqTopic(FEEDBACK_TOPIC),
      (e, ctx) => void dead.push(`${ctx.topic}:${JSON.stringify(e.payload)}`),
      { group: 'dlq-test', fromBeginning: true },
    );
    await bus.publish(
      FEEDBACK_TOPIC,
      createEnvelope({ type: 'QualityFeedback', source: 't', payload: { requestId: 'never-seen', thumbs: 'up' } }),
    );
    expect(await until(() => dead.some((d) => d.includes('never-seen')), 5000)).toBe(true);
    await sub.close();
    await expect(publishFeedback(bus, 't', { requestId: 'x', rating: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      field: 'feedback.rating',
    });
  });

  it('feedback comes once, from the caller that received the answer, naming an unguessable id (hardening round 2, item 8)', async () => {
    const a = await ask(1000);
    const id = a.parameters.feedback_id;
    expect(a.id).toBe('req-1000'); // the client's id is echoed, but it is not what feedback names
    expect(id).toMatch(/^r-[A-Za-z0-9_-]{22}$/);
    expect((await http(`${url}/v1/feedback`, { json: { requestId: 'req-1000', thumbs: 'down' } })).status).toBe(404);
    expect((await http(`${url}/v1/feedback`, { json: { requestId: id, rating: 9 } })).status).toBe(400); // a refused feedback keeps the vote
    expect((await http(`${url}/v1/feedback`, { json: { requestId: id, thumbs: 'down' } })).status).toBe(202);
    const again = await Promise.all(
      Array.from({ length: 50 }, () => http(`${url}/v1/feedback`, { json: { requestId: id, thumbs: 'down' } })),
    );
    expect(again.map((r) => r.status)).toEqual(Array(50).fill(409));
    // Feedback naming a model without an answer from this node (curated labels) needs an operator key.
    const forged = await http(`${url}/v1/feedback`, { json: { requestId: 'made-up', model: 'small', thumbs: 'down' } });
    expect(forged.status).toBe(403);
  });

  it('plain V2 routes and unknown tasks are unchanged / typed', async () => {
    const v2 = await http(`${url}/v2/models/small/infer`, { json: rowsInput([[1, 1, 1, 1]]) });
    expect(v2.body.model_name).toBe('small');
    const none = await http(`${url}/v1/tasks/nope/infer`, { json: rowsInput([[1, 1, 1, 1]]) });
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('ERR_MODEL_NOT_FOUND');
    const ev = await http(`${url}/v1/evaluate`, { json: { response: 'the cat', context: { reference: 'the cat' } } });
    expect(ev.body.scores.exactMatch).toBe(1);
  });

  it("the task route takes Triton's binary tensor form (binary input, binary output) too", async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      }),
    );
    const body = Buffer.concat([header, Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)]);
    const res = await fetch(`${url}/v1/tasks/digits/infer`, {
      method: 'POST',
      body,
      headers: { 'inference-header-content-length': String(header.length) },
    });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const n = Number(res.headers.get('inference-header-content-length'));
    const json = JSON.parse(bytes.subarray(0, n).toString()) as {
      model_name: string;
      outputs: { parameters: { binary_data_size: number } }[];
    };
    expect(json.outputs[0]!.parameters.binary_data_size).toBe(16);
    const y = Array.from({ length: 4 }, (_, i) => bytes.readFloatLE(n + 4 * i));
    expect(y).toEqual([1, 2, 3, 4].map((v) => v * (json.model_name === 'large' ? 2 : 1)));
  });
});
