// The gRPC endpoint (KServe's GRPCInferenceService, proto/grpc_predict_v2.proto) on the shipped MNIST model, driven by a
// client generated from the project's proto with @grpc/proto-loader + @grpc/grpc-js; keys as on HTTP; HTTPS and gRPC over
// TLS with a certificate the test makes with the openssl CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  credentials,
  loadPackageDefinition,
  Metadata,
  status,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseConfig } from '../src/config/whale-config.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { scaleModel, WIDTH } from './support/serving.js';

const ROWS = 4;
const PIXELS = 784;
/** The TLS test makes its certificate with the openssl CLI (scripts/ensure-toolchain.sh installs it; npm test runs that). */
const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const PROTO = resolve(import.meta.dirname, '..', 'proto', 'grpc_predict_v2.proto');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- messages as the generated client returns them, checked field by field
type Call = (req: unknown, md?: Metadata) => Promise<any>;
type RawClient = Client &
  Record<
    string,
    (
      r: unknown,
      md: Metadata,
      opts: { deadline?: number },
      cb: (e: ServiceError | null, v: unknown) => void,
    ) => { cancel(): void }
  >;
type InferenceClient = Record<
  'ServerLive' | 'ServerReady' | 'ServerMetadata' | 'ModelMetadata' | 'ModelReady' | 'ModelInfer',
  Call
> & { close(): void; raw: RawClient };

/** A client of the project's proto (as any user would generate it), its unary calls as promises. */
function client(
  address: string,
  creds = credentials.createInsecure(),
  options: Record<string, string> = {},
): InferenceClient {
  const def = loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    inference: { GRPCInferenceService: ServiceClientConstructor };
  };
  const c = new pkg.inference.GRPCInferenceService(address, creds, options) as Client &
    Record<string, (r: unknown, md: Metadata, cb: (e: ServiceError | null, v: unknown) => void) => void>;
  const call =
    (name: string): Call =>
    (req, md = new Metadata()) =>
      new Promise((res, rej) =>
        c[name]!.call(c, req, md, (e: ServiceError | null, v: unknown) => (e ? rej(e) : res(v))),
      );
  return {
    ServerLive: call('ServerLive'),
    ServerReady: call('ServerReady'),
    ServerMetadata: call('ServerMetadata'),
    ModelMetadata: call('ModelMetadata'),
    ModelReady: call('ModelReady'),
    ModelInfer: call('ModelInfer'),
    close: () => c.close(),
    raw: c as unknown as RawClient,
  };
}

async function serve(extra: Record<string, unknown> = {}): Promise<{ server: WhaleServer; url: string; grpc: string }> {
  const config = parseConfig(
    { http: { port: 0 }, grpc: { enabled: true, port: 0 }, shutdownGraceMs: 1_000, ...extra },
    '/',
  );
  const messaging = new MessagingService({
    bus: new LocalBus(),
    store: new MemoryStateStore(),
    nodeId: 'grpc-test',
    logger: silentLogger,
  });
  const server = new WhaleServer({ config, messaging, logger: silentLogger, serverVersion: 'test' });
  const { url, grpc } = await server.start();
  return { server, url, grpc: grpc! };
}

function float32Bytes(values: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) b.writeFloatLE(values[i]!, i * 4);
  return b;
}

async function grpcError(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as ServiceError;
  }
  throw new Error('the call succeeded');
}

describe('gRPC GRPCInferenceService (mnist)', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let c: InferenceClient;
  const { images } = readMnist('test', { count: ROWS });
  const pixels = Array.from(images.subarray(0, ROWS * PIXELS));
  let httpScores: number[];
  let outputName: string;

  beforeAll(async () => {
    s = await serve();
    c = client(s.grpc);
    const res = await fetch(`${s.url}/v2/models/mnist/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [ROWS, PIXELS], datatype: 'FP32', data: pixels }] }),
    });
    const body = (await res.json()) as { outputs: { name: string; data: number[] }[] };
    httpScores = body.outputs[0]!.data;
    outputName = body.outputs[0]!.name;
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await s?.server.stop();
  });

  it('health and metadata calls', async () => {
    expect(await c.ServerLive({})).toEqual({ live: true });
    expect(await c.ServerReady({})).toEqual({ ready: true });
    expect(await c.ServerMetadata({})).toMatchObject({ name: 'smart-whale', version: 'test' });
    expect(await c.ModelReady({ name: 'mnist' })).toEqual({ ready: true });
    expect(await c.ModelReady({ name: 'mnist', version: '1' })).toEqual({ ready: true });
    const meta = await c.ModelMetadata({ name: 'mnist' });
    expect(meta).toMatchObject({ name: 'mnist', versions: ['1'] });
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: ['-1', '784'] }]);
    expect(meta.outputs[0]).toMatchObject({ name: outputName, datatype: 'FP32' });
  });

  it('ModelInfer with typed contents matches the HTTP JSON scores', async () => {
    const res = await c.ModelInfer({
      model_name: 'mnist',
      id: 'typed-1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [ROWS, PIXELS], contents: { fp32_contents: pixels } }],
    });
    expect(res).toMatchObject({ model_name: 'mnist', model_version: '1', id: 'typed-1', raw_output_contents: [] });
    expect(res.parameters.level).toMatchObject({ string_param: expect.any(String) });
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]).toMatchObject({ name: outputName, datatype: 'FP32', shape: [String(ROWS), '10'] });
    expect(res.outputs[0].contents.fp32_contents).toEqual(httpScores);
  });

  it('ModelInfer with raw_input_contents answers raw_output_contents with the same scores', async () => {
    const res = await c.ModelInfer({
      model_name: 'mnist',
      model_version: '1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [ROWS, PIXELS] }],
      outputs: [{ name: outputName }],
      raw_input_contents: [float32Bytes(pixels)],
    });
    expect(res.raw_output_contents).toHaveLength(1);
    const raw = res.raw_output_contents[0] as Buffer;
    expect(raw.length).toBe(ROWS * 10 * 4);
    expect(Array.from({ length: ROWS * 10 }, (_, i) => raw.readFloatLE(i * 4))).toEqual(httpScores);
    expect(res.outputs[0].contents).toBeNull();
  });

  it('errors: unknown model → NOT_FOUND, bad tensors → INVALID_ARGUMENT with the field, a bogus key → UNAUTHENTICATED', async () => {
    const unknown = await grpcError(
      c.ModelInfer({
        model_name: 'nope',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [1] } }],
      }),
    );
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toMatch(/no model named 'nope'/);
    expect(unknown.metadata.get('whale-code')).toEqual(['ERR_MODEL_NOT_FOUND']);
    expect((await grpcError(c.ModelMetadata({ name: 'nope' }))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(c.ModelReady({ name: 'mnist', version: '9' }))).code).toBe(status.NOT_FOUND);

    const count = await grpcError(
      c.ModelInfer({
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS], contents: { fp32_contents: [1, 2] } }],
      }),
    );
    expect(count.code).toBe(status.INVALID_ARGUMENT);
    expect(count.details).toMatch(/fp32_contents: has 2 elements but shape \[1, 784\] needs 784/);
    const rawSize = await grpcError(
      c.ModelInfer({
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS] }],
        raw_input_contents: [Buffer.alloc(12)],
      }),
    );
    expect(rawSize.code).toBe(status.INVALID_ARGUMENT);
    expect(rawSize.details).toMatch(/needs 3136/);
    const level = await grpcError(
      c.ModelInfer({
        model_name: 'mnist',
        parameters: { level: { string_param: 'ultra' } },
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS] }],
        raw_input_contents: [Buffer.alloc(PIXELS * 4)],
      }),
    );
    expect(level.code).toBe(status.INVALID_ARGUMENT);
    expect(level.metadata.get('whale-field')).toEqual(['parameters.level']);

    const md = new Metadata();
    md.set('authorization', 'Basic abc');
    expect((await grpcError(c.ServerLive({}, md))).code).toBe(status.UNAUTHENTICATED);
  });
});

describe('gRPC keys and TLS', () => {
  it('keyed inference: no key → UNAUTHENTICATED, a user key → OK; a tenant named by an anonymous call → PERMISSION_DENIED', async () => {
    const { key, record } = createApiKey('user', { tenant: 'acme' });
    const s = await serve({ auth: { keys: [record], inference: 'keyed' } });
    const c = client(s.grpc);
    try {
      const req = {
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS] }],
        raw_input_contents: [Buffer.alloc(PIXELS * 4)],
      };
      const anon = await grpcError(c.ModelInfer(req));
      expect(anon.code).toBe(status.UNAUTHENTICATED);
      expect(anon.details).toMatch(/needs an API key/);
      const md = new Metadata();
      md.set('authorization', `Bearer ${key}`);
      expect((await c.ModelInfer(req, md)).raw_output_contents).toHaveLength(1);
      const other = await grpcError(c.ModelInfer({ ...req, parameters: { tenant: { string_param: 'other' } } }, md));
      expect(other.code).toBe(status.PERMISSION_DENIED);
      expect(await c.ServerLive({})).toEqual({ live: true }); // reading stays public
    } finally {
      c.close();
      await s.server.stop();
    }
  }, 60_000);

  it('HTTPS and gRPC over TLS from cert/key paths (a self-signed certificate made here with the openssl CLI)', async () => {
    expect(OPENSSL, 'no openssl CLI on PATH: run scripts/ensure-toolchain.sh (npm test does)').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'whale-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'pipe' }); // prettier-ignore
    // A path that cannot be read is a configuration error naming the field.
    await expect(
      serve({ grpc: { enabled: true, port: 0, tls: { cert: join(dir, 'missing.pem'), key } } }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG', field: 'grpc.tls.cert' });
    // Paths relative to the configuration's directory (http) or absolute (grpc).
    const config = parseConfig(
      {
        http: { port: 0, tls: { cert: 'cert.pem', key: 'key.pem' } },
        grpc: { enabled: true, port: 0, tls: { cert, key } },
        shutdownGraceMs: 500,
      },
      dir,
    );
    const server = new WhaleServer({
      config,
      messaging: new MessagingService({
        bus: new LocalBus(),
        store: new MemoryStateStore(),
        nodeId: 'tls',
        logger: silentLogger,
      }),
      logger: silentLogger,
      serverVersion: 'test',
    });
    const { url, grpc } = await server.start();
    const ca = readFileSync(cert);
    const c = client(grpc!, credentials.createSsl(ca), { 'grpc.ssl_target_name_override': 'localhost' }); // the name the certificate is for
    try {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((res, rej) => {
        const r = httpsRequest(`${url}/v2/health/ready`, { ca, servername: 'localhost' }, (m) => {
          let text = '';
          m.on('data', (d: Buffer) => (text += d.toString()));
          m.on('end', () => res(`${m.statusCode} ${text}`));
        });
        r.on('error', rej);
        r.end();
      });
      expect(body).toBe('200 {"ready":true}');
      expect(await c.ServerReady({})).toEqual({ ready: true });
      const res = await c.ModelInfer({
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS] }],
        raw_input_contents: [Buffer.alloc(PIXELS * 4)],
      });
      expect(res.raw_output_contents[0]).toHaveLength(40);
      // A plaintext client cannot talk to the TLS endpoint.
      const plain = client(grpc!);
      expect((await grpcError(plain.ServerLive({}))).code).toBe(status.UNAVAILABLE);
      plain.close();
    } finally {
      c.close();
      await server.stop();
    }
  }, 60_000);
});

describe('gRPC limits and shutdown', () => {
  it('a message past grpc.maxMessageBytes → RESOURCE_EXHAUSTED; stop() drains a call in flight, then refuses new ones', async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    let entered: (() => void) | undefined;
    const inModel = new Promise<void>((r) => (entered = r));
    const slow = scaleModel('slow', 3, {
      onBatch: async () => {
        entered?.();
        await gate;
      },
    });
    const config = parseConfig(
      {
        http: { port: 0 },
        grpc: { enabled: true, port: 0, maxMessageBytes: 1024 },
        models: [{ name: 'slow', adapter: 'onnx', path: '/unused/slow.onnx', batching: { maxBatchSize: 1 } }],
        shutdownGraceMs: 5_000,
      },
      '/',
    );
    const server = new WhaleServer({
      config,
      models: [slow.model],
      messaging: new MessagingService({
        bus: new LocalBus(),
        store: new MemoryStateStore(),
        nodeId: 'drain',
        logger: silentLogger,
      }),
      logger: silentLogger,
    });
    const { grpc } = await server.start();
    const c = client(grpc!);
    try {
      const big = await grpcError(
        c.ModelInfer({
          model_name: 'slow',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH] }],
          raw_input_contents: [Buffer.alloc(4096)],
        }),
      );
      expect(big.code).toBe(status.RESOURCE_EXHAUSTED);

      const pending = c.ModelInfer({
        model_name: 'slow',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], contents: { fp32_contents: [1, 2, 3, 4] } }],
      });
      await inModel;
      const stopped = server.stop();
      await new Promise((r) => setTimeout(r, 100));
      release!();
      const answer = await pending;
      expect(answer.outputs[0].contents.fp32_contents).toEqual([3, 6, 9, 12]);
      await stopped;
      expect((await grpcError(c.ServerLive({}))).code).toBe(status.UNAVAILABLE);
    } finally {
      release?.();
      c.close();
      await server.stop();
    }
  }, 30_000);

  it('a cancelled call and a call past its deadline leave the queue: the model never runs them', async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    let entered: (() => void) | undefined;
    const inModel = new Promise<void>((r) => (entered = r));
    const slow = scaleModel('slow', 1, {
      onBatch: async () => {
        entered?.();
        await gate;
      },
    });
    const config = parseConfig(
      {
        http: { port: 0 },
        grpc: { enabled: true, port: 0 },
        models: [{ name: 'slow', adapter: 'onnx', path: '/unused/slow.onnx', batching: { maxBatchSize: 1 } }],
        shutdownGraceMs: 1_000,
      },
      '/',
    );
    const server = new WhaleServer({
      config,
      models: [slow.model],
      messaging: new MessagingService({
        bus: new LocalBus(),
        store: new MemoryStateStore(),
        nodeId: 'cancel',
        logger: silentLogger,
      }),
      logger: silentLogger,
    });
    const { grpc } = await server.start();
    const c = client(grpc!);
    const req = (v: number) => ({
      model_name: 'slow',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], contents: { fp32_contents: [v, v, v, v] } }],
    });
    const rawCall = (r: unknown, opts: { deadline?: number }) => {
      let handle: { cancel(): void } | undefined;
      const done = new Promise<unknown>((res, rej) => {
        handle = c.raw.ModelInfer!(r, new Metadata(), opts, (e, v) => (e ? rej(e) : res(v)));
      });
      return { done, cancel: () => handle!.cancel() };
    };
    try {
      const first = c.ModelInfer(req(1)); // holds the model
      await inModel;
      const cancelled = rawCall(req(2), {});
      const late = rawCall(req(3), { deadline: Date.now() + 300 });
      await new Promise((r) => setTimeout(r, 100));
      cancelled.cancel();
      expect((await grpcError(cancelled.done)).code).toBe(status.CANCELLED);
      expect((await grpcError(late.done)).code).toBe(status.DEADLINE_EXCEEDED);
      await new Promise((r) => setTimeout(r, 200)); // the server sees the cancel / its own deadline
      release!();
      expect((await first).outputs[0].contents.fp32_contents).toEqual([1, 1, 1, 1]);
      expect((await c.ModelInfer(req(4))).outputs[0].contents.fp32_contents).toEqual([4, 4, 4, 4]);
      expect(slow.calls.batches).toBe(2); // requests 1 and 4: 2 and 3 never ran
    } finally {
      release?.();
      c.close();
      await server.stop();
    }
  }, 30_000);
});

describe('gRPC configuration', () => {
  it('grpc section: defaults, checks naming the field, relative TLS paths; WHALE_HTTP_HOST moves gRPC unless its host was set apart', async () => {
    const { loadConfig } = await import('../src/config/whale-config.js');
    const dir = mkdtempSync(join(tmpdir(), 'whale-grpc-config-'));
    const d = parseConfig({}, dir).grpc;
    expect(d).toEqual({
      enabled: false,
      port: 8081,
      host: '127.0.0.1',
      maxMessageBytes: 16 * 1024 * 1024,
      maxConcurrentStreams: 1000,
    });
    expect(parseConfig({ grpc: { tls: { cert: 'c.pem', key: '/abs/k.pem' } } }, dir).grpc.tls).toEqual({
      cert: join(dir, 'c.pem'),
      key: '/abs/k.pem',
    });
    expect(parseConfig({ http: { tls: { cert: 'c.pem', key: 'k.pem' } } }, dir).http.tls).toEqual({
      cert: join(dir, 'c.pem'),
      key: join(dir, 'k.pem'),
    });
    expect(() => parseConfig({ grpc: { port: 70000 } }, dir)).toThrow(/grpc\.port/);
    expect(() => parseConfig({ grpc: { enabled: 'yes' } }, dir)).toThrow(/grpc\.enabled/);
    expect(() => parseConfig({ grpc: { tls: { cert: 'c.pem' } } }, dir)).toThrow(/grpc\.tls\.key/);
    expect(() => parseConfig({ grpc: { bogus: 1 } }, dir)).toThrow(/grpc/);
    expect(() => parseConfig({ http: { tls: { cert: 'c.pem', key: 'k.pem', ca: 'x' } } }, dir)).toThrow(/http\.tls/);
    const env = { WHALE_HTTP_HOST: '0.0.0.0', WHALE_CONFIG: '' };
    expect(loadConfig({ cwd: dir, env }).grpc.host).toBe('0.0.0.0');
    const file = join(dir, 'apart.json');
    writeFileSync(file, JSON.stringify({ grpc: { host: '::1' } }));
    expect(loadConfig({ path: file, env }).grpc.host).toBe('::1');
  });
});
