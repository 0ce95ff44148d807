// Tracing (issue 22, "Tracing and logs"): one trace from an HTTP request on one node, over the bus (W3C trace
// context in the envelope's headers), to the pipeline, scheduler and model of another node; spans recorded by the
// OpenTelemetry SDK into an InMemorySpanExporter. Off, nothing is added to messages.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createLogger, silentLogger, withLogContext } from '../src/common/logger.js';
import { tracingActive, withSpan } from '../src/common/trace.js';
import { parseConfig } from '../src/config/whale-config.js';
import { parseHeaders, parseTracing, tracesUrlOf } from '../src/config/tracing.js';
import type { HttpRouteHandler } from '../src/server/http-server.js';
import { startTracing, type Tracing } from '../src/server/tracing.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import type { ResponseChunk } from '../src/services/user-service.js';
import { readEnv } from '../src/common/env.js';
import { createEnvelope, type Envelope } from '../src/transport/envelope.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError, until } from './helpers.js';
import { kafkaHarness } from './support/buses.js';
import { rowsInput, scaleModel, startTestServer, WIDTH } from './support/serving.js';

const FORWARD = '/v1/tasks/remote/infer'; // an inference route: open without keys, like the V2 infer routes

describe('a trace across HTTP → bus → another node → model', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  const bus = new LocalBus();
  const store = new MemoryStateStore();
  const nodes: WhaleServer[] = [];
  /** The trace id active in each model run, by node. */
  const ran: { node: number; traceId: string | undefined }[] = [];
  const waiting = new Map<string, (c: ResponseChunk) => void>();
  const seenRequests: Envelope[] = [];

  beforeAll(async () => {
    tracing = await startTracing(
      { tracesUrl: 'http://127.0.0.1:9/v1/traces', serviceName: 'whale-test', sampleRatio: 1, headers: {} },
      { exporter },
    );
    // Node 0 takes HTTP requests and hands them to the bus (a front node); both nodes serve the bus's inference requests.
    const forward: HttpRouteHandler = async (req, res, url) => {
      if (req.method !== 'POST' || url.pathname !== FORWARD) return false;
      const user = nodes[0]!.messaging.user;
      const { sessionId } = await user.registerUserSession('tracing-user');
      const answer = new Promise<ResponseChunk>((resolve) => waiting.set(sessionId, resolve));
      await user.receiveUserRequest(sessionId, {
        id: 'r1',
        model: 'double',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: [1, 2, 3, 4] }],
      });
      const chunk = await answer;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(chunk.chunk));
      return true;
    };
    for (let i = 0; i < 2; i++) {
      const config = parseConfig(
        {
          http: { port: 0 },
          models: [{ name: 'double', adapter: 'onnx', path: '/unused.onnx' }],
          ...(i === 1 ? { grpc: { enabled: true, port: 0 } } : {}),
        },
        '/',
      );
      const messaging = new MessagingService({ bus, store, nodeId: `node-${i}`, logger: silentLogger });
      const model = scaleModel('double', 2, {
        onBatch: () => void ran.push({ node: i, traceId: trace.getActiveSpan()?.spanContext().traceId }),
      }).model;
      nodes.push(
        new WhaleServer({
          config,
          messaging,
          models: [model],
          logger: silentLogger,
          ...(i === 0 ? { httpHandlers: [forward] } : {}),
        }),
      );
    }
    await Promise.all(nodes.map((n) => n.start()));
    await bus.subscribe(
      TOPICS.userResponses,
      (e) => void waiting.get((e.payload as ResponseChunk).sessionId)?.(e.payload as ResponseChunk),
      { group: 'tracing-client' },
    );
    await bus.subscribe(TOPICS.userRequests, (e) => void seenRequests.push(e), { group: 'tracing-spy' });
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop();
    await bus.close();
    await tracing.shutdown();
  });

  it('has one trace id from the HTTP span on node 0 to the model run on node 1, through traceparent in the message headers', async () => {
    expect(tracingActive()).toBe(true);
    // The inference group shares partitions between the two nodes by session: ask until node 1 answered one.
    let traceId: string | undefined;
    for (let i = 0; i < 40 && traceId === undefined; i++) {
      const before = ran.length;
      const res = await fetch(`${nodes[0]!.address}${FORWARD}`, {
        method: 'POST',
        headers: { 'x-request-id': `trace-${i}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe(`trace-${i}`);
      expect((await res.json()).outputs[0].data).toEqual([2, 4, 6, 8]);
      const run = ran.slice(before).find((r) => r.node === 1);
      if (run) traceId = run.traceId;
    }
    expect(traceId, 'node 1 served a request within 40 tries').toMatch(/^[0-9a-f]{32}$/);
    expect(
      await until(
        () => exporter.getFinishedSpans().some((s) => s.kind === 1 && s.spanContext().traceId === traceId),
        5_000,
      ),
    ).toBe(true);

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const one = (name: string, pred: (s: ReadableSpan) => boolean = () => true) => {
      const found = spans.filter((s) => s.name === name && pred(s));
      expect(found.length, `${name} in ${spans.map((s) => s.name).join(', ')}`).toBeGreaterThanOrEqual(1);
      return found[0]!;
    };
    const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? '');
    const server = one('POST /v1/tasks/{task}/infer');
    expect(server.parentSpanContext).toBeUndefined(); // the trace starts at the HTTP request
    expect(server.attributes).toMatchObject({ 'http.response.status_code': 200, 'url.path': FORWARD });
    const publish = one(`${TOPICS.userRequests} publish`);
    expect(publish.kind).toBe(3); // PRODUCER
    const model = one('whale.model.execute');
    const task = parentOf(model)!;
    expect(task.name).toBe('whale.scheduler.task');
    const pipeline = parentOf(task)!;
    expect(pipeline.name).toBe('whale.pipeline');
    expect(pipeline.attributes).toMatchObject({ 'whale.model': 'double', 'whale.level': 'normal' });
    const consume = parentOf(pipeline)!;
    expect(consume.name).toBe(`${TOPICS.userRequests} process`);
    expect(consume.kind).toBe(4); // CONSUMER
    expect(parentOf(consume)).toBe(publish); // across the bus: the consumer's parent is the producer's span
    // and the producer span descends from the HTTP span.
    let up: ReadableSpan | undefined = publish;
    while (up && up !== server) up = parentOf(up);
    expect(up).toBe(server);
    // The answer's way back is in the same trace.
    one(`${TOPICS.userResponses} publish`);
    // Messages published outside any trace (metrics, events on timers) start no trace of their own.
    await bus.publish(
      TOPICS.events,
      createEnvelope({ type: 'Event', source: 'outside', payload: { type: 'tick', data: {} } }),
    );
    expect(
      exporter.getFinishedSpans().filter((s) => s.name === `${TOPICS.events} publish` && !s.parentSpanContext),
    ).toEqual([]);
    // The context travelled as a W3C traceparent header in the envelope.
    const msg = seenRequests.find((e) => e.headers.traceparent?.includes(traceId!));
    expect(msg?.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    // and the HTTP request's id, under which the serving node logs.
    expect(msg?.headers['x-request-id']).toMatch(/^trace-\d+$/);
  }, 60_000);

  it('carries the trace the same way over Kafka (two KafkaBus instances on the mock cluster)', async () => {
    const h = await kafkaHarness([['t.trace', 1]]);
    try {
      const [a, b] = [h.bus(), h.bus()];
      const seen: { traceId: string | undefined; envelope: Envelope }[] = [];
      await b.subscribe(
        't.trace',
        (e) => void seen.push({ traceId: trace.getActiveSpan()?.spanContext().traceId, envelope: e }),
        { group: 'trace-g' },
      );
      let traceId = '';
      await withSpan('kafka-client', {}, async (span) => {
        traceId = span!.spanContext().traceId;
        await a.publish('t.trace', createEnvelope({ type: 'X', source: 'a', payload: {} }));
      });
      expect(await until(() => seen.length === 1, 20_000)).toBe(true);
      expect(seen[0]!.traceId).toBe(traceId);
      expect(seen[0]!.envelope.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-`));
      const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      const publish = spans.find((s) => s.name === 't.trace publish')!;
      expect(publish.attributes['messaging.system']).toBe('kafka');
      const consume = spans.find((s) => s.name === 't.trace process')!;
      expect(consume.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    } finally {
      await h.stop();
    }
  }, 60_000);

  it("follows the caller's traceparent", async () => {
    const caller = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${nodes[1]!.address}/v2/models/double/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${caller}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: [1, 1, 1, 1] }] }),
    });
    expect(res.status).toBe(200);
    expect(
      await until(
        () =>
          exporter
            .getFinishedSpans()
            .some((s) => s.name === 'POST /v2/models/{model}/infer' && s.spanContext().traceId === caller),
        5_000,
      ),
    ).toBe(true);
    const names = exporter
      .getFinishedSpans()
      .filter((s) => s.spanContext().traceId === caller)
      .map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['whale.pipeline', 'whale.scheduler.task', 'whale.model.execute']));
    const server = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'POST /v2/models/{model}/infer' && s.spanContext().traceId === caller)!;
    expect(server.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    // A path outside the routes is named by its method only (span names stay few).
    expect((await fetch(`${nodes[1]!.address}/no/such/path-${Date.now()}`)).status).toBe(404);
    expect(
      await until(
        () =>
          exporter
            .getFinishedSpans()
            .some((s) => s.kind === 1 && s.name === 'GET' && String(s.attributes['url.path']).startsWith('/no/such/')),
        5_000,
      ),
    ).toBe(true);
  });

  it("gRPC ModelInfer: a server span in the caller's trace, the request id echoed in the response metadata", async () => {
    const caller = '0af7651916cd43dd8448eb211c80319c';
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
    const c = new pkg.inference.GRPCInferenceService(nodes[1]!.grpcAddress!, credentials.createInsecure()) as Client &
      Record<
        string,
        (
          r: unknown,
          md: Metadata,
          cb: (e: ServiceError | null, v: unknown) => void,
        ) => { on(ev: 'metadata', f: (m: Metadata) => void): void }
      >;
    try {
      const md = new Metadata();
      md.set('traceparent', `00-${caller}-b7ad6b7169203331-01`);
      md.set('x-request-id', 'grpc-call-1');
      let echoed: unknown;
      const out = await new Promise<{ outputs: { name: string }[] }>((res, rej) => {
        const call = c.ModelInfer!(
          {
            model_name: 'double',
            inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], contents: { fp32_contents: [1, 2, 3, 4] } }],
          },
          md,
          (e, v) => (e ? rej(e) : res(v as { outputs: { name: string }[] })),
        );
        call.on('metadata', (m) => (echoed = m.get('x-request-id')[0]));
      });
      expect(out.outputs[0]!.name).toBe('y');
      expect(echoed).toBe('grpc-call-1');
    } finally {
      c.close();
    }
    const name = 'inference.GRPCInferenceService/ModelInfer';
    expect(
      await until(
        () => exporter.getFinishedSpans().some((s) => s.name === name && s.spanContext().traceId === caller),
        5_000,
      ),
    ).toBe(true);
    const server = exporter.getFinishedSpans().find((s) => s.name === name && s.spanContext().traceId === caller)!;
    expect(server.kind).toBe(1); // SERVER
    expect(server.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.method': 'ModelInfer',
      'rpc.grpc.status_code': 0,
      'whale.request_id': 'grpc-call-1',
    });
    const pipeline = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'whale.pipeline' && s.spanContext().traceId === caller);
    expect(pipeline?.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
  });
});

describe('OTLP export', () => {
  it('POSTs the spans to <endpoint>/v1/traces as OTLP/HTTP JSON, with the configured headers, when tracing shuts down', async () => {
    const got: { url: string; type: string; auth: string; body: Buffer }[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push({
          url: req.url ?? '',
          type: String(req.headers['content-type']),
          auth: String(req.headers['x-api-key']),
          body: Buffer.concat(chunks),
        });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const port = (collector.address() as AddressInfo).port;
    const config = parseTracing(
      { enabled: true, otlpEndpoint: `http://127.0.0.1:${port}`, serviceName: 'otlp-check' },
      readEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=k1' }),
    );
    const t = await startTracing(config);
    const server = await startTestServer([scaleModel('m', 2).model]);
    try {
      const r = await fetch(`${server.url}/v2/models/m/infer`, {
        method: 'POST',
        body: JSON.stringify(rowsInput([[1, 2, 3, 4]])),
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(200);
      await r.text();
    } finally {
      await server.stop();
      await t.shutdown(); // flushes the batch
      collector.close();
    }
    expect(tracingActive()).toBe(false);
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got[0]).toMatchObject({ url: '/v1/traces', type: 'application/json', auth: 'k1' });
    type Otlp = {
      resourceSpans: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: { name: string; traceId: string }[] }[];
      }[];
    };
    const batches = got.map((g) => JSON.parse(g.body.toString('utf8')) as Otlp);
    const rs = batches.flatMap((b) => b.resourceSpans);
    expect(rs[0]!.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'otlp-check' } });
    const spans = rs.flatMap((r) => r.scopeSpans.flatMap((x) => x.spans));
    const names = spans.map((x) => x.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'POST /v2/models/{model}/infer',
        'whale.pipeline',
        'whale.scheduler.task',
        'whale.model.execute',
      ]),
    );
    const http = spans.find((x) => x.name === 'POST /v2/models/{model}/infer')!;
    expect(spans.find((x) => x.name === 'whale.model.execute')!.traceId).toBe(http.traceId);
  }, 30_000);
});

describe('an unreachable collector', () => {
  it('is reported through the logger (throttled), never thrown into requests', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('tracing', 'info', (l) => void lines.push(JSON.parse(l)));
    const config = parseTracing(
      { enabled: true, otlpEndpoint: 'http://127.0.0.1:9' },
      readEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20sekrit' }),
    );
    const t = await startTracing(config, { logger });
    await withSpan('lost', {}, () => undefined);
    await withSpan('lost too', {}, () => undefined);
    await t.shutdown();
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toMatchObject({ component: 'tracing' });
    expect(String(lines[0]!.msg)).toMatch(/^tracing: /);
    expect(JSON.stringify(lines)).not.toContain('sekrit');
  }, 30_000);
});

describe('tracing off (the default)', () => {
  it('adds no header to messages and records nothing', async () => {
    expect(tracingActive()).toBe(false);
    const bus = new LocalBus();
    const got: Envelope[] = [];
    await bus.subscribe('t.off', (e) => void got.push(e), { group: 'g' });
    await bus.publish('t.off', createEnvelope({ type: 'X', source: 's', payload: {} }));
    expect(await until(() => got.length === 1, 2_000)).toBe(true);
    expect(got[0]!.headers).toEqual({});
    await bus.close();
  });

  it("carries the request id over the bus: the consumer logs under the publisher's request id", async () => {
    const bus = new LocalBus();
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('consumer', 'info', (l) => void lines.push(JSON.parse(l)));
    const got: Envelope[] = [];
    await bus.subscribe(
      't.rid',
      (e) => {
        got.push(e);
        log.info('handled', { n: got.length });
      },
      { group: 'g' },
    );
    await withLogContext({ requestId: 'rid-1' }, () =>
      bus.publish('t.rid', createEnvelope({ type: 'X', source: 's', payload: {} })),
    );
    await bus.publish(
      't.rid',
      createEnvelope({ type: 'X', source: 's', payload: {}, headers: { 'x-request-id': 'not safe' } }),
    );
    expect(await until(() => got.length === 2, 2_000)).toBe(true);
    expect(got[0]!.headers).toEqual({ 'x-request-id': 'rid-1' });
    expect(lines[0]).toMatchObject({ msg: 'handled', n: 1, requestId: 'rid-1' });
    expect(lines[1]).not.toHaveProperty('requestId');
    await bus.close();
  });

  it('parses the tracing section and the OTEL_* variables', async () => {
    const off = parseTracing(undefined, readEnv({}));
    expect(off).toEqual({
      enabled: false,
      tracesUrl: 'http://localhost:4318/v1/traces',
      serviceName: 'smart-whale',
      sampleRatio: 1,
      headers: {},
    });
    const on = parseTracing(
      { enabled: true, otlpEndpoint: 'https://otel.example:4318/', serviceName: 'eu-1', sampleRatio: 0.25 },
      readEnv({}),
    );
    expect(on).toMatchObject({
      enabled: true,
      tracesUrl: 'https://otel.example:4318/v1/traces',
      serviceName: 'eu-1',
      sampleRatio: 0.25,
    });
    const env = readEnv({
      WHALE_TRACING: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_SERVICE_NAME: 'from-env',
      OTEL_TRACES_SAMPLER_ARG: '0.5',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s%3Dcret, x-team=a',
    });
    expect(parseTracing({ enabled: false, serviceName: 'cfg' }, env)).toEqual({
      enabled: true,
      tracesUrl: 'http://c:4318/v1/traces',
      serviceName: 'from-env',
      sampleRatio: 0.5,
      headers: { 'x-api-key': 's=cret', 'x-team': 'a' },
    });
    expect(parseTracing({}, readEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:9/custom' })).tracesUrl).toBe(
      'http://c:9/custom',
    );
    expect(tracesUrlOf('http://c/v1/traces')).toBe('http://c/v1/traces');
    await expectWhaleError(() => parseTracing({ sampleRatio: 2 }, readEnv({})), 'ERR_CONFIG', 'tracing.sampleRatio');
    await expectWhaleError(
      () => parseTracing({ otlpEndpoint: 'ftp://x' }, readEnv({})),
      'ERR_CONFIG',
      'tracing.otlpEndpoint',
    );
    await expectWhaleError(
      () => parseTracing({ otlpEndpoint: 'http://u:p@x' }, readEnv({})),
      'ERR_CONFIG',
      'tracing.otlpEndpoint',
    );
    await expectWhaleError(() => parseTracing({ colour: 1 }, readEnv({})), 'ERR_CONFIG', 'tracing.colour');
    await expectWhaleError(() => parseTracing({}, readEnv({ WHALE_TRACING: 'maybe' })), 'ERR_CONFIG', 'WHALE_TRACING');
    await expectWhaleError(
      () => parseTracing({}, readEnv({ OTEL_TRACES_SAMPLER_ARG: 'x' })),
      'ERR_CONFIG',
      'OTEL_TRACES_SAMPLER_ARG',
    );
    // A malformed header entry is refused without echoing its (possibly secret) value.
    let message = '';
    try {
      parseHeaders('novalue-secret-123');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/OTEL_EXPORTER_OTLP_HEADERS/);
    expect(message).not.toContain('secret-123');
    // whale.config.json takes the section.
    expect(parseConfig({ tracing: { enabled: true, sampleRatio: 0 } }, '/').tracing).toMatchObject({
      enabled: true,
      sampleRatio: 0,
    });
  });
});
