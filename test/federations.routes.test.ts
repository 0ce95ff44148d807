/**
 * /v1/federations on a running server (in process, no learners): operator key required to start and stop,
 * bad settings answered 400 naming the field, the served model's held-out evaluation reported, DELETE
 * stops a federation waiting for its clients; whale.config.json's federations section.
 */
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseFederationConfig } from '../src/config/federations.js';
import { parseConfig } from '../src/config/whale-config.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { FederationsExtension, nextVersion } from '../src/server/extensions/federations.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { http } from './support/serving.js';

const root = join(import.meta.dirname, '..');
const operator = createApiKey('operator');
const auth = { authorization: `Bearer ${operator.key}`, 'content-type': 'application/json' };
let server: WhaleServer;
let starter: ((model: string, reason: string) => Promise<void>) | undefined;
let url: string;

beforeAll(async () => {
  const config = parseConfig(
    {
      http: { port: 0 },
      models: [{ name: 'mnist', adapter: 'onnx', path: 'models/mnist/model.onnx', version: '1' }],
      auth: { keys: [operator.record] },
      shutdownGraceMs: 1000,
    },
    root,
  );
  const messaging = new MessagingService({
    bus: new LocalBus(),
    store: new MemoryStateStore(),
    nodeId: 'n1',
    logger: silentLogger,
  });
  server = new WhaleServer({
    config,
    messaging,
    logger: silentLogger,
    extensions: [
      // Stands in for the quality-routing extension: it holds the starter its schedule-federated-round applies.
      {
        name: 'quality-routing',
        start: () => undefined,
        stop: () => undefined,
        setFederatedRoundStarter: (f: typeof starter) => (starter = f),
      },
      new FederationsExtension({
        models: config.models,
        federations: {
          start: [],
          onQualityDrop: parseFederationConfig({ expectClients: 2, heldOut: { count: 200 } }, 'q'),
        },
        logger: silentLogger,
      }),
    ],
  });
  url = (await server.start()).url;
}, 60_000);
afterAll(() => server?.stop());

const post = (body: unknown, headers: Record<string, string> = auth) =>
  http(`${url}/v1/federations`, { method: 'POST', headers, body: JSON.stringify(body) });

describe('/v1/federations', () => {
  it('refuses without an operator key, and bad settings with the field named', async () => {
    expect((await post({ model: 'mnist' }, { 'content-type': 'application/json' })).status).toBe(401);
    const bad = await post({ model: 'mnist', config: { rounds: 0 } });
    expect(bad).toMatchObject({ status: 400, body: { code: 'ERR_INVALID_ARG', field: 'config.rounds' } });
    const unknown = await post({ model: 'mnist', config: { fraction: 0.5, colour: 'red' } });
    expect(unknown.body.error).toMatch(/config\.colour: unknown setting/);
    expect((await post({ model: 'nope' })).status).toBe(404);
    expect((await post({ config: {} })).body.field).toBe('model');
    expect((await http(`${url}/v1/federations/none`)).status).toBe(404);
  });

  it('starts one that waits for its learners, reports it, and DELETE stops it', async () => {
    const created = await post({
      id: 'wait-1',
      model: 'mnist',
      config: { rounds: 3, expectClients: 2, waitForClientsMs: 60_000, heldOut: { count: 500 } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'wait-1', model: 'mnist', servedVersion: '1', rounds: [], versions: [] });
    expect((await post({ id: 'wait-1', model: 'mnist' })).status).toBe(409);
    let info = created.body;
    while (info.state === 'starting') {
      await new Promise((r) => setTimeout(r, 100));
      info = (await http(`${url}/v1/federations/wait-1`)).body;
    }
    expect(info.state, info.error).toBe('running');
    // The served version's evaluation on the held-out set: the bar a round must reach.
    expect(info.servedEvaluation.accuracy).toBeGreaterThan(0.9);
    expect(info).toMatchObject({ clients: [], rejected: {}, gate: { margin: 0, publish: true } });
    expect(JSON.stringify(info)).not.toMatch(/storeDir":"|\/tmp\//);
    expect((await http(`${url}/v1/federations`)).body.federations).toEqual([
      { id: 'wait-1', model: 'mnist', state: 'running', rounds: 0, versions: [] },
    ]);
    expect((await http(`${url}/v1/federations/wait-1`, { method: 'DELETE' })).status).toBe(401);
    const stopped = await http(`${url}/v1/federations/wait-1`, { method: 'DELETE', headers: auth });
    expect(stopped).toMatchObject({ status: 200, body: { state: 'stopped' } });
    expect((await http(`${url}/v2/models/mnist`)).body.versions).toEqual(['1']);
  }, 60_000);

  it("a quality drop's schedule-federated-round starts one federation of the model", async () => {
    expect(starter).toBeTypeOf('function');
    await starter!('mnist', 'quality 0.70 is below the target 0.80 over 50 samples');
    const list = (await http(`${url}/v1/federations`)).body.federations.filter(
      (f: { state: string }) => f.state !== 'stopped',
    );
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ model: 'mnist' });
    await expect(starter!('mnist', 'again')).rejects.toMatchObject({ code: 'ERR_CONFLICT' });
    expect((await http(`${url}/v1/federations/${list[0].id}`, { method: 'DELETE', headers: auth })).body.state).toBe(
      'stopped',
    );
  }, 60_000);

  it("whale.config.json's federations section, and the next version's name", () => {
    const c = parseConfig(
      {
        models: [{ name: 'mnist', adapter: 'onnx', path: 'm.onnx' }],
        federations: {
          storeDir: 'fed',
          start: [{ id: 'nightly', model: 'mnist', config: { rounds: 4, gate: { margin: 0.002 } } }],
          onQualityDrop: { rounds: 2 },
        },
      },
      '/srv/whale',
    );
    expect(c.federations).toMatchObject({
      storeDir: '/srv/whale/fed',
      start: [
        { id: 'nightly', model: 'mnist', config: { rounds: 4, fraction: 1, gate: { margin: 0.002 }, publish: true } },
      ],
      onQualityDrop: { rounds: 2, heldOut: { dataset: 'mnist-test', count: 2000, offset: 0 } },
    });
    expect(() =>
      parseConfig(
        {
          models: [{ name: 'mnist', adapter: 'onnx', path: 'm.onnx' }],
          federations: { start: [{ model: 'mnist', config: { lr: -1 } }] },
        },
        '/',
      ),
    ).toThrow(/federations\.start\[0\]\.config\.lr/);
    expect(nextVersion(['1'])).toBe('2');
    expect(nextVersion(['1', '7', 'beta'])).toBe('8');
    expect(nextVersion(['beta'])).toBe('2');
  });
});
