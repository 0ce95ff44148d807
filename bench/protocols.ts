/**
 * The three ways a client reaches a model, on the shipped MNIST model served by
 * `whale start` in a child process (so the client below does not share the
 * server's event loop): HTTP with JSON tensors, HTTP with Triton's binary
 * tensor data extension (binary input and binary output), and gRPC
 * (GRPCInferenceService.ModelInfer with raw_input_contents). One image per
 * request, `parameters.level = normal` (no response cache), closed loop at
 * concurrency 1, 8 and 64 for a fixed time per cell after a short warm-up; the
 * order of the protocols rotates by one per concurrency. The clients are the
 * same Node process for all three (node:http with a keep-alive agent of
 * `concurrency` sockets; one @grpc/grpc-js channel, HTTP/2 multiplexed), and
 * every answer is checked (status, output size), so a failure is counted, not timed.
 * Besides wall-clock figures (which a loaded machine bends), each cell reports the
 * CPU time spent per request by the server's main (JavaScript) thread, where the
 * protocol is handled (/proc/<pid>/task/<pid>/stat; onnxruntime's own threads, which
 * spin while waiting and so charge time rather than requests, are left out), and by
 * the client process (process.cpuUsage()): what each protocol costs, whatever the load.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { credentials, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';

import { readMnist } from '../src/models/mnist-idx.js';
import { packageRoot } from '../src/native/loader.js';
import { loadInferenceProto } from '../src/server/grpc/grpc-server.js';
import { fmt, percentile, table } from './stats.js';
import { freePort, mainThreadCpuUs } from './processes.js';

const PIXELS = 784;
const CLASSES = 10;
const IMAGES = 256;
const PROTOCOLS = ['http-json', 'http-binary', 'grpc'] as const;
type Protocol = (typeof PROTOCOLS)[number];

interface Cell {
  protocol: Protocol;
  concurrency: number;
  requests: number;
  errors: number;
  throughput: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) per answered request, µs: the server's main thread, the client process. */
  serverCpuUs: number;
  clientCpuUs: number;
}

/** `whale start` on the default model with gRPC on; resolves once it prints its serving line. */
async function startServer(): Promise<{ http: number; grpc: number; pid: number; stop: () => Promise<void> }> {
  const [http, grpc] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'whale-bench-protocols-'));
  const config = join(dir, 'whale.config.json');
  writeFileSync(config, JSON.stringify({ http: { port: http }, grpc: { enabled: true, port: grpc } }));
  const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'whale.js'), 'start', '--config', config], {
    cwd: dir,
    env: { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/serving .*gRPC on/.test(out)) {
        clearInterval(t);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`whale start exited: ${out}`));
      }
    }, 50);
  });
  return {
    http,
    grpc,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
    },
  };
}

/**
 * The server's background CPU (monitoring samplers, timers) in µs per second, measured idle: subtracted
 * from each cell's server CPU so that a cell of few requests is not charged for it.
 */
async function idleCpuRate(pid: number, seconds: number): Promise<number> {
  const c0 = mainThreadCpuUs(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return (mainThreadCpuUs(pid) - c0) / ((performance.now() - t0) / 1000);
}

let serverIdleUsPerSecond = 0;

async function closedLoop(
  concurrency: number,
  seconds: number,
  send: (i: number) => Promise<void>,
  serverPid: number,
): Promise<Omit<Cell, 'protocol' | 'concurrency'>> {
  const server0 = mainThreadCpuUs(serverPid);
  const client0 = process.cpuUsage();
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const i = next++;
        const s = performance.now();
        try {
          await send(i);
          latencies.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const serverCpu = Math.max(0, mainThreadCpuUs(serverPid) - server0 - serverIdleUsPerSecond * elapsed);
  latencies.sort((a, b) => a - b);
  const n = Math.max(1, latencies.length);
  return {
    requests: latencies.length,
    errors,
    throughput: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    serverCpuUs: serverCpu / n,
    clientCpuUs: (client.user + client.system) / n,
  };
}

function post(
  agent: Agent,
  port: number,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(body.length) },
      },
      (m) => {
        const chunks: Buffer[] = [];
        m.on('data', (c: Buffer) => chunks.push(c));
        m.on('end', () =>
          resolve({
            status: m.statusCode ?? 0,
            headers: m.headers,
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
          }),
        );
        m.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

export async function benchProtocols(o: {
  quick: boolean;
  seconds?: number;
}): Promise<{ text: string; cells: Cell[] }> {
  const seconds = o.seconds ?? (o.quick ? 1 : 3);
  const warmup = o.quick ? 0.3 : 0.5;
  const { images } = readMnist('test', { count: IMAGES });
  const image = (i: number) => images.subarray((i % IMAGES) * PIXELS, ((i % IMAGES) + 1) * PIXELS);
  // Bodies built once, so the client's encoding does not bound the figures (the answers are decoded per request).
  const jsonBodies = Array.from({ length: IMAGES }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        parameters: { level: 'normal' },
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS], data: Array.from(image(i)) }],
      }),
    ),
  );
  const binaryBodies = Array.from({ length: IMAGES }, (_, i) => {
    const header = Buffer.from(
      JSON.stringify({
        parameters: { level: 'normal', binary_data_output: true },
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS], parameters: { binary_data_size: PIXELS * 4 } }],
      }),
    );
    const px = image(i);
    return {
      body: Buffer.concat([header, Buffer.from(px.buffer, px.byteOffset, px.byteLength)]),
      headerLength: String(header.length),
    };
  });
  const grpcRequests = Array.from({ length: IMAGES }, (_, i) => {
    const px = image(i);
    return {
      model_name: 'mnist',
      parameters: { level: { string_param: 'normal' } },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, PIXELS] }],
      raw_input_contents: [Buffer.from(px.buffer, px.byteOffset, px.byteLength)],
    };
  });

  const server = await startServer();
  const pkg = loadInferenceProto() as unknown as { inference: { GRPCInferenceService: ServiceClientConstructor } };
  const grpcClient = new pkg.inference.GRPCInferenceService(
    `127.0.0.1:${server.grpc}`,
    credentials.createInsecure(),
  ) as unknown as Client & {
    ModelInfer(r: unknown, cb: (e: ServiceError | null, v: { raw_output_contents: Buffer[] }) => void): void;
  };
  const cells: Cell[] = [];
  serverIdleUsPerSecond = await idleCpuRate(server.pid, o.quick ? 1 : 3);
  const load: number[][] = [loadavg()];
  try {
    for (const [ci, concurrency] of [1, 8, 64].entries()) {
      const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
      const send: Record<Protocol, (i: number) => Promise<void>> = {
        'http-json': async (i) => {
          const r = await post(agent, server.http, '/v2/models/mnist/infer', jsonBodies[i % IMAGES]!, {
            'content-type': 'application/json',
          });
          if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
          const body = JSON.parse(r.body.toString()) as { outputs: { data: number[] }[] };
          if (body.outputs[0]!.data.length !== CLASSES) throw new Error('bad answer');
        },
        'http-binary': async (i) => {
          const b = binaryBodies[i % IMAGES]!;
          const r = await post(agent, server.http, '/v2/models/mnist/infer', b.body, {
            'content-type': 'application/octet-stream',
            'inference-header-content-length': b.headerLength,
          });
          if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
          const n = Number(r.headers['inference-header-content-length']);
          if (r.body.length - n !== CLASSES * 4) throw new Error('bad answer');
          JSON.parse(r.body.subarray(0, n).toString());
        },
        grpc: (i) =>
          new Promise<void>((resolve, reject) =>
            grpcClient.ModelInfer(grpcRequests[i % IMAGES]!, (e, v) =>
              e
                ? reject(e)
                : v.raw_output_contents[0]?.length === CLASSES * 4
                  ? resolve()
                  : reject(new Error('bad answer')),
            ),
          ),
      };
      const order = PROTOCOLS.map((_, k) => PROTOCOLS[(k + ci) % PROTOCOLS.length]!);
      for (const protocol of order) {
        await closedLoop(concurrency, warmup, send[protocol], server.pid);
        cells.push({ protocol, concurrency, ...(await closedLoop(concurrency, seconds, send[protocol], server.pid)) });
      }
      agent.destroy();
      load.push(loadavg());
    }
  } finally {
    grpcClient.close();
    await server.stop();
  }
  const byKey = new Map(cells.map((c) => [`${c.protocol}@${c.concurrency}`, c]));
  const rows = [1, 8, 64].flatMap((conc) =>
    PROTOCOLS.map((p) => {
      const c = byKey.get(`${p}@${conc}`)!;
      return [
        String(conc),
        p,
        fmt(c.throughput, 0),
        fmt(c.p50, 2),
        fmt(c.p99, 2),
        fmt(c.serverCpuUs, 0),
        fmt(c.clientCpuUs, 0),
        String(c.requests),
        String(c.errors),
      ];
    }),
  );
  const text = [
    `protocols: HTTP JSON vs HTTP binary (Triton's binary tensor extension) vs gRPC (raw_input_contents), shipped MNIST model served by whale start in a child process,`,
    `1 image per request, level normal (no cache), ${seconds} s per cell after ${warmup} s warm-up; load average (1 min) during the run: ${load.map((l) => l[0]!.toFixed(2)).join(' → ')}`,
    `CPU per request: the server's main (JS) thread less its idle background (${fmt(serverIdleUsPerSecond / 1000, 1)} ms of CPU per second, measured before the cells), the client process as is`,
    table(
      ['conc', 'protocol', 'req/s', 'p50 ms', 'p99 ms', 'server JS µs/req', 'client µs/req', 'requests', 'errors'],
      rows,
    ),
  ].join('\n');
  return { text, cells };
}
