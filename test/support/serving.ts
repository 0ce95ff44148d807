/** A WhaleServer on loopback with small in-process models, for the serving tests. */
import { WhaleError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { defineModel } from '../../src/core/base/model.js';
import type { ModelInterface } from '../../src/core/base/model.js';
import type { NamedTensors, Tensor } from '../../src/core/base/tensor.js';
import { parseConfig } from '../../src/config/whale-config.js';
import { MessagingService } from '../../src/services/messaging-service.js';
import { MemoryStateStore } from '../../src/services/state-store.js';
import type { Bus } from '../../src/transport/bus.js';
import { LocalBus } from '../../src/transport/local-bus.js';
import { WhaleServer } from '../../src/server/whale-server.js';

export const WIDTH = 4;

/** y = factor·x over rows of WIDTH floats; counts its batched runs. */
export function scaleModel(
  name: string,
  factor: number,
  hooks: { onBatch?: (rows: number) => Promise<void> | void } = {},
) {
  const calls = { batches: 0, rows: [] as number[] };
  const run = async (input: NamedTensors): Promise<NamedTensors> => {
    const x = input.x!;
    const rows = x.shape[0]!;
    calls.batches++;
    calls.rows.push(rows);
    await hooks.onBatch?.(rows);
    const y = Float32Array.from(x.data as Float32Array, (v) => v * factor);
    return { y: { name: 'y', datatype: 'FP32', shape: [rows, WIDTH], data: y } };
  };
  const model = defineModel({
    name,
    version: '1',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, WIDTH] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, WIDTH] }],
    process: run,
    processBatch: async (inputs: NamedTensors[]) => {
      const rows = inputs.map((i) => i.x!.shape[0]!);
      const total = rows.reduce((a, b) => a + b, 0);
      const data = new Float32Array(total * WIDTH);
      let at = 0;
      for (const i of inputs) {
        data.set(i.x!.data as Float32Array, at);
        at += (i.x!.data as Float32Array).length;
      }
      const out = await run({ x: { name: 'x', datatype: 'FP32', shape: [total, WIDTH], data } });
      const y = out.y!.data as Float32Array;
      let off = 0;
      return rows.map((r) => {
        const part = y.slice(off * WIDTH, (off + r) * WIDTH);
        off += r;
        return { y: { name: 'y', datatype: 'FP32', shape: [r, WIDTH], data: part } as Tensor };
      });
    },
  });
  return { model, calls };
}

export interface TestServer {
  server: WhaleServer;
  url: string;
  bus: Bus;
  stop(): Promise<void>;
}

export async function startTestServer(
  models: ModelInterface[],
  config: Record<string, unknown> = {},
  opts: { bus?: Bus } = {},
): Promise<TestServer> {
  const cfg = parseConfig(
    {
      http: { port: 0, maxBodyBytes: 64 * 1024 },
      models: models.map((m) => ({
        name: m.name,
        adapter: 'onnx',
        path: `/unused/${m.name}.onnx`,
        ...(config[m.name] as object),
      })),
      ...(config.pipeline ? { pipeline: config.pipeline } : {}),
      shutdownGraceMs: 2_000,
    },
    '/',
  );
  const bus = opts.bus ?? new LocalBus();
  const messaging = new MessagingService({
    bus,
    store: new MemoryStateStore(),
    nodeId: 'test-node',
    logger: silentLogger,
  });
  const server = new WhaleServer({ config: cfg, messaging, models, logger: silentLogger, serverVersion: 'test' });
  const { url } = await server.start();
  return { server, url, bus, stop: () => server.stop() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the server answered
type AnyJson = any;

export async function http(
  url: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<{ status: number; body: AnyJson }> {
  const { json, ...rest } = init;
  const res = await fetch(url, {
    ...rest,
    ...(json === undefined
      ? {}
      : {
          method: rest.method ?? 'POST',
          body: JSON.stringify(json),
          headers: { 'content-type': 'application/json', ...(rest.headers as Record<string, string> | undefined) },
        }),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body };
}

export function rowsInput(rows: number[][]): { inputs: unknown[] } {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, WIDTH], data: rows.flat() }] };
}

/** Counts to n, one step every 20 ms (a model with its own generate()); n = 0 fails after its first step. */
export function counterModel(name = 'counter') {
  const seen = { produced: 0, closed: 0, aborted: 0 };
  const model = defineModel({
    name,
    inputs: [{ name: 'n', datatype: 'INT32', shape: [1] }],
    outputs: [{ name: 'value', datatype: 'INT32', shape: [1] }],
    process: (input) => ({ value: { name: 'value', datatype: 'INT32', shape: [1], data: input.n!.data } }),
    async *generate(input, { signal }) {
      const n = (input.n!.data as Int32Array)[0]!;
      try {
        for (let i = 1; i <= Math.max(n, 1); i++) {
          if (signal?.aborted) {
            seen.aborted++;
            return;
          }
          await new Promise((r) => setTimeout(r, 20));
          seen.produced++;
          const value = { name: 'value', datatype: 'INT32' as const, shape: [1], data: Int32Array.of(i) };
          yield { outputs: { value }, final: i === n };
          if (n === 0) throw new WhaleError('ERR_MODEL_RUN', 'n: cannot count to 0');
        }
      } finally {
        seen.closed++;
      }
    },
  });
  return { model, seen };
}
