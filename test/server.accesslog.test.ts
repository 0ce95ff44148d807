// Access log and request ids (issue 22, "Tracing and logs"): one JSON line per request through the server's logger
// (method, path, status, duration, bytes, request id, key id and tenant), x-request-id honoured when safe or generated,
// echoed, and in every log line written while the request is handled; no secret (key, query string) in any line.
import { resolve } from 'node:path';

import {
  credentials,
  loadPackageDefinition,
  Metadata,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createLogger, silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseConfig } from '../src/config/whale-config.js';
import { chooseRequestId, logPath, routeOf, SAFE_REQUEST_ID } from '../src/server/request-context.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { until } from './helpers.js';
import { rowsInput, scaleModel } from './support/serving.js';

describe('access log and request ids', () => {
  const lines: string[] = [];
  const write = (l: string) => void lines.push(l);
  const modelLog = createLogger('model', 'info', write);
  const user = createApiKey('user', { tenant: 'acme' });
  let server: WhaleServer;
  let url: string;
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const accessLines = () => parsed().filter((l) => l.msg === 'request');

  beforeAll(async () => {
    const config = parseConfig(
      {
        http: { port: 0 },
        grpc: { enabled: true, port: 0 },
        models: [{ name: 'm', adapter: 'onnx', path: '/unused/m.onnx' }],
        auth: { keys: [user.record] },
        shutdownGraceMs: 500,
      },
      '/',
    );
    const messaging = new MessagingService({
      bus: new LocalBus(),
      store: new MemoryStateStore(),
      nodeId: 'log-node',
      logger: silentLogger,
    });
    const model = scaleModel('m', 2, { onBatch: () => modelLog.info('model ran') }).model;
    server = new WhaleServer({
      config,
      messaging,
      models: [model],
      logger: createLogger('server', 'info', write),
      serverVersion: 'test',
    });
    ({ url } = await server.start());
  });
  afterAll(async () => {
    await server.stop();
  });

  it('writes one line per request with its id, echoed, in every line of the request; no secret', async () => {
    const res = await fetch(`${url}/v2/models/m/infer?token=SECRET-IN-QUERY`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${user.key}`,
        'x-request-id': 'client-req.42',
      },
      body: JSON.stringify(rowsInput([[1, 2, 3, 4]])),
    });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('client-req.42');
    expect(await until(() => accessLines().some((l) => l.requestId === 'client-req.42'), 3_000)).toBe(true);
    const access = accessLines().find((l) => l.requestId === 'client-req.42')!;
    expect(access).toMatchObject({
      level: 'info',
      component: 'server',
      method: 'POST',
      path: '/v2/models/m/infer',
      status: 200,
      keyId: user.record.id,
      tenant: 'acme',
    });
    expect(access.bytes).toBe(Buffer.byteLength(body));
    expect(access.bytesIn).toBe(JSON.stringify(rowsInput([[1, 2, 3, 4]])).length);
    expect(typeof access.durationMs).toBe('number');
    // The model's own log line, written while the request was handled, carries the request id.
    expect(parsed().find((l) => l.msg === 'model ran')).toMatchObject({
      component: 'model',
      requestId: 'client-req.42',
    });
    const all = lines.join('\n');
    expect(all).not.toContain('SECRET-IN-QUERY');
    expect(all).not.toContain(user.key);
    expect(all).not.toContain(user.key.split('_')[2]!);
    expect(all.toLowerCase()).not.toContain('bearer');
  });

  it('generates an id when the client sends none or an unsafe one; errors are logged with their status', async () => {
    const a = await fetch(`${url}/v2/models/nope/ready`);
    const b = await fetch(`${url}/v2/health/live`, { headers: { 'x-request-id': 'x'.repeat(129) } });
    const c = await fetch(`${url}/v2/health/live`, { headers: { 'x-request-id': 'has space"<script>' } });
    const d = await fetch(`${url}/v2/models/m/infer`, {
      method: 'POST',
      headers: { authorization: 'Bearer wk_00000000_not-a-key' },
      body: '{}',
    });
    const ids = [a, b, c, d].map((r) => r.headers.get('x-request-id')!);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(4);
    expect([a.status, b.status, c.status, d.status]).toEqual([404, 200, 200, 401]);
    await Promise.all([a, b, c, d].map((r) => r.text()));
    expect(await until(() => ids.every((id) => accessLines().some((l) => l.requestId === id)), 3_000)).toBe(true);
    const byId = (id: string) => accessLines().find((l) => l.requestId === id)!;
    expect(byId(ids[0]!)).toMatchObject({ method: 'GET', path: '/v2/models/nope/ready', status: 404 });
    expect(byId(ids[3]!)).toMatchObject({ method: 'POST', status: 401 });
    expect(byId(ids[3]!).keyId).toBeUndefined();
    expect(lines.join('\n')).not.toContain('not-a-key');
  });

  it('gRPC calls: the id from the metadata, echoed, and one line with the method and the gRPC status; no key in it', async () => {
    const def = loadSync(resolve(import.meta.dirname, '..', 'proto', 'grpc_predict_v2.proto'), {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = loadPackageDefinition(def) as unknown as {
      inference: { GRPCInferenceService: ServiceClientConstructor };
    };
    type Unary = (
      r: unknown,
      md: Metadata,
      cb: (e: ServiceError | null, v: unknown) => void,
    ) => { on(ev: 'metadata', f: (m: Metadata) => void): void };
    const c = new pkg.inference.GRPCInferenceService(server.grpcAddress!, credentials.createInsecure()) as Client &
      Record<string, Unary>;
    const call = (name: string, req: unknown, md: Metadata) =>
      new Promise<{ code: number; echoed: unknown }>((res) => {
        let echoed: unknown;
        c[name]!(req, md, (e) => res({ code: e?.code ?? 0, echoed })).on(
          'metadata',
          (m) => (echoed = m.get('x-request-id')[0]),
        );
      });
    try {
      const md = new Metadata();
      md.set('x-request-id', 'grpc-live-1');
      expect(await call('ServerLive', {}, md)).toEqual({ code: 0, echoed: 'grpc-live-1' });
      const keyed = new Metadata();
      keyed.set('authorization', `Bearer ${user.key}`);
      keyed.set('x-request-id', 'grpc-infer-1');
      const infer = { model_name: 'nope', inputs: [] };
      expect((await call('ModelInfer', infer, keyed)).code).toBe(5); // NOT_FOUND
    } finally {
      c.close();
    }
    expect(await until(() => accessLines().some((l) => l.requestId === 'grpc-infer-1'), 3_000)).toBe(true);
    expect(accessLines().find((l) => l.requestId === 'grpc-live-1')).toMatchObject({
      method: 'GRPC',
      path: '/inference.GRPCInferenceService/ServerLive',
      status: 0,
    });
    expect(accessLines().find((l) => l.requestId === 'grpc-infer-1')).toMatchObject({
      method: 'GRPC',
      path: '/inference.GRPCInferenceService/ModelInfer',
      status: 5,
      keyId: user.record.id,
      tenant: 'acme',
    });
    expect(lines.join('\n')).not.toContain(user.key);
  });

  it('request id rules, paths without query, low-cardinality routes', () => {
    expect(chooseRequestId('abc-DEF_1.2:3/4+5=6@7')).toBe('abc-DEF_1.2:3/4+5=6@7');
    expect(chooseRequestId(['first', 'second'])).toBe('first');
    for (const bad of ['', 'a b', 'é', 'a\nb', 'x'.repeat(129), '"quoted"']) expect(chooseRequestId(bad)).not.toBe(bad);
    expect(SAFE_REQUEST_ID.test('x'.repeat(128))).toBe(true);
    expect(logPath('/v2/models/m/infer?key=secret#frag')).toBe('/v2/models/m/infer');
    expect(logPath(`/${'a'.repeat(600)}`)).toHaveLength(512);
    expect(routeOf('/v2/models/mnist/versions/3/infer')).toBe('/v2/models/{model}/versions/{version}/infer');
    expect(routeOf('/v1/tasks/chat/infer')).toBe('/v1/tasks/{task}/infer');
    expect(routeOf('/v1/resources/quotas/mnist')).toBe('/v1/resources/quotas/{model}');
  });
});
