/**
 * `npm run bench -- http`: HTTP serving against the two peers a user would otherwise have, in one run.
 * Three servers, each its own process, started here: `whale start` (the CLI, shipped MNIST model,
 * default configuration), the plain server and the fixed-answer node:http (bench/http-peers.ts).
 * autocannon (closed loop, keep-alive, `c` connections) drives them in alternating rounds at
 * concurrency 1, 8 and 64: every round runs every (target, concurrency) cell once, the order of the
 * targets rotated by one per round and per concurrency, so no target always runs first or last or
 * in the same stretch of the machine's load. One real-valued image (784 floats in [0, 1], MNIST test
 * set) per request, rotating over 256 images: V2 JSON for all three, and Triton's binary tensor form
 * (binary input and output) for whale. Latencies are autocannon's per-response times (float ms, not
 * its whole-ms histogram). Each cell's figure is the median over the rounds; ratios are of those medians.
 *
 * `--profile DIR` starts whale with `node --cpu-prof --cpu-prof-dir DIR` (the profile is written
 * when it stops); bench/http-profile.ts summarises such a profile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { readMnist } from '../src/models/mnist-idx.js';
import { packageRoot } from '../src/native/loader.js';
import { fmt, median, percentile, table } from './stats.js';
import { freePort, mainThreadCpuUs } from './processes.js';

const PIXELS = 784;
const IMAGES = 256;
const CONCURRENCY = [1, 8, 64] as const;
const TARGETS = ['whale-json', 'whale-binary', 'base-json', 'base-binary', 'plain', 'fixed'] as const;
type Target = (typeof TARGETS)[number];

/** The part of autocannon's programmatic API used here (it ships no types). */
interface AutocannonInstance {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'done', fn: (r: AutocannonResult) => void): void;
}
interface AutocannonResult {
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Cell {
  target: Target;
  concurrency: number;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  failed: number;
  /** CPU (user + system) of the server's main thread per answered request, µs: what the JS path costs, whatever the load. */
  cpuUs: number;
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const r = request({ host: '127.0.0.1', port, path, method: 'GET' }, (m) => {
      m.resume();
      m.on('end', () => resolve(m.statusCode ?? 0));
    });
    r.on('error', () => resolve(0));
    r.end();
  });
}

interface Running {
  port: number;
  pid: number;
  stop: () => Promise<void>;
}

/** Spawns a server and waits until GET `ready` answers (200 for whale's readiness route; any status for a peer). */
async function launch(
  args: string[],
  port: number,
  ready: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Running> {
  // stderr (whale's log and access log) goes to a file, as in a deployment: through a pipe, this process
  // (the load generator's) would read every access-log line.
  const logDir = mkdtempSync(join(tmpdir(), 'whale-bench-http-log-'));
  const log = join(logDir, 'stderr.log');
  const fd = openSync(log, 'w');
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  const tail = () => readFileSync(log, 'utf8').slice(-4000);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const until = performance.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited: ${tail()}`);
    if (performance.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`${args.join(' ')} did not answer GET ${ready} within 120 s: ${tail()}`);
    }
    const status = await get(port, ready);
    if (status === 200 || (status !== 0 && ready === '/')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

async function startWhale(
  profileDir: string | undefined,
  extra: Record<string, unknown> = {},
  root = packageRoot(),
): Promise<Running> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'whale-bench-http-'));
  const config = join(dir, 'whale.config.json');
  writeFileSync(config, JSON.stringify({ ...extra, http: { port } }));
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  // The access log (one JSON line per request, info level, the default) is written to a file (launch).
  const env = { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_CONFIG: '' };
  return launch([...prof, join(root, 'bin', 'whale.js'), 'start', '--config', config], port, '/v2/health/ready', env);
}

async function startPeer(kind: 'plain' | 'fixed'): Promise<Running> {
  const port = await freePort();
  const model = join(packageRoot(), 'models', 'mnist', 'model.onnx');
  const script = join(packageRoot(), 'dist', 'bench', 'http-peers.js');
  return launch([script, kind, String(port), ...(kind === 'plain' ? [model] : [])], port, '/');
}

interface Load {
  path: string;
  headers: Record<string, string>;
  bodies: Buffer[];
}

function loads(): Record<'json' | 'binary', Load> {
  const { images } = readMnist('test', { count: IMAGES });
  const image = (i: number) => images.subarray(i * PIXELS, (i + 1) * PIXELS);
  const path = '/v2/models/mnist/infer';
  const json = Array.from({ length: IMAGES }, (_, i) =>
    Buffer.from(
      JSON.stringify({ inputs: [{ name: 'input', shape: [1, PIXELS], datatype: 'FP32', data: Array.from(image(i)) }] }),
    ),
  );
  const header = Buffer.from(
    JSON.stringify({
      parameters: { binary_data_output: true },
      inputs: [{ name: 'input', shape: [1, PIXELS], datatype: 'FP32', parameters: { binary_data_size: PIXELS * 4 } }],
    }),
  );
  const binary = Array.from({ length: IMAGES }, (_, i) => {
    const px = image(i);
    return Buffer.concat([header, Buffer.from(px.buffer, px.byteOffset, px.byteLength)]);
  });
  return {
    json: { path, headers: { 'content-type': 'application/json' }, bodies: json },
    binary: {
      path,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      bodies: binary,
    },
  };
}

/** One closed-loop cell: `connections` keep-alive connections for `seconds`, bodies rotating. */
function drive(
  server: Running,
  load: Load,
  connections: number,
  seconds: number,
): Promise<Omit<Cell, 'target' | 'concurrency' | 'round'>> {
  const port = server.port;
  const cpu0 = mainThreadCpuUs(server.pid);
  return new Promise((resolve) => {
    let next = 0;
    const latencies: number[] = [];
    let ok = 0;
    const t0 = performance.now();
    const inst = autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: load.path,
          headers: load.headers,
          setupRequest: (r: Record<string, unknown>) => ({ ...r, body: load.bodies[next++ % load.bodies.length] }),
        },
      ],
    });
    inst.on('response', (_c, status, _b, ms) => {
      if (status === 200) {
        ok++;
        latencies.push(ms);
      }
    });
    inst.on('done', (r) => {
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      resolve({
        rps: ok / Math.min(elapsed, seconds),
        p50: percentile(latencies, 0.5) ?? NaN,
        p99: percentile(latencies, 0.99) ?? NaN,
        requests: ok,
        failed: r.non2xx + r.errors + r.timeouts,
        cpuUs: (mainThreadCpuUs(server.pid) - cpu0) / Math.max(1, ok),
      });
    });
  });
}

export interface HttpBenchOptions {
  runs: number;
  quick: boolean;
  seconds?: number;
  /** Only whale (JSON and binary), whale started with --cpu-prof into this folder. */
  profile?: string;
  /** Concurrencies to run (default 1, 8, 64). */
  concurrency?: number[];
  /** Targets to run (default all four; ratios need plain and fixed). */
  targets?: string[];
  /** Configuration given to whale start besides its port (default: none, the shipped defaults). */
  whaleConfig?: Record<string, unknown>;
  /**
   * Another checkout of this package (built: dist/ and its addon), run beside this one as the targets
   * base-json and base-binary with the same configuration: an A/B of two versions in the same rounds.
   */
  baseline?: string;
}

export async function benchHttp(o: HttpBenchOptions): Promise<{ text: string; cells: Cell[]; summary: unknown[] }> {
  const seconds = o.seconds ?? (o.quick ? 1 : 2);
  const warmup = o.quick ? 0.3 : 1;
  const concurrencies = o.concurrency ?? [...CONCURRENCY];
  const targets: Target[] = o.targets
    ? TARGETS.filter((t) => o.targets!.includes(t))
    : o.profile
      ? ['whale-json', 'whale-binary']
      : TARGETS.filter((t) => !t.startsWith('base-') || o.baseline !== undefined);
  if (targets.some((t) => t.startsWith('base-')) && o.baseline === undefined)
    throw new Error('the targets base-json and base-binary need --baseline DIR (another built checkout)');
  const withPeers = targets.includes('plain') && targets.includes('fixed');
  const l = loads();
  const whale = await startWhale(o.profile, o.whaleConfig);
  const base = o.baseline === undefined ? undefined : await startWhale(undefined, o.whaleConfig, o.baseline);
  const started: Partial<Record<'plain' | 'fixed', Running>> = {};
  for (const p of ['plain', 'fixed'] as const) if (targets.includes(p)) started[p] = await startPeer(p);
  const peers = withPeers ? (started as Record<'plain' | 'fixed', Running>) : undefined;
  const server = (t: Target) =>
    t.startsWith('whale') ? whale : t.startsWith('base') ? base! : started[t as 'plain' | 'fixed']!;
  const loadFor = (t: Target) => (t.endsWith('-binary') ? l.binary : l.json);
  const cells: Cell[] = [];
  const load: number[] = [loadavg()[0]!];
  try {
    for (const t of targets) await drive(server(t), loadFor(t), 8, warmup); // JIT and sessions warm
    for (let round = 0; round < o.runs; round++) {
      for (const [ci, c] of concurrencies.entries()) {
        const order = targets.map((_, k) => targets[(k + round + ci) % targets.length]!);
        for (const t of order)
          cells.push({ target: t, concurrency: c, round, ...(await drive(server(t), loadFor(t), c, seconds)) });
      }
      load.push(loadavg()[0]!);
    }
  } finally {
    await Promise.all([whale.stop(), base?.stop(), started.plain?.stop(), started.fixed?.stop()]);
  }
  const med = (t: Target, c: number, k: 'rps' | 'p50' | 'p99' | 'cpuUs') =>
    median(cells.filter((x) => x.target === t && x.concurrency === c).map((x) => x[k]));
  const failed = (t: Target, c: number) =>
    cells.filter((x) => x.target === t && x.concurrency === c).reduce((a, x) => a + x.failed, 0);
  const rows = concurrencies.flatMap((c) =>
    targets.map((t) => [
      String(c),
      t,
      fmt(med(t, c, 'rps'), 0),
      fmt(med(t, c, 'p50'), 2),
      fmt(med(t, c, 'p99'), 2),
      fmt(med(t, c, 'cpuUs'), 0),
      String(failed(t, c)),
    ]),
  );
  const summary = concurrencies.map((c) => {
    const w = med('whale-json', c, 'rps');
    const row: Record<string, number> = {
      concurrency: c,
      whaleJsonRps: w,
      whaleBinaryRps: med('whale-binary', c, 'rps'),
    };
    if (peers) {
      row.vsPlain = w / med('plain', c, 'rps');
      row.vsFixed = w / med('fixed', c, 'rps');
      row.binaryVsFixed = med('whale-binary', c, 'rps') / med('fixed', c, 'rps');
      row.p99Whale = med('whale-json', c, 'p99');
      row.p99Plain = med('plain', c, 'p99');
    }
    if (base) {
      row.vsBaseJson = w / med('base-json', c, 'rps');
      row.cpuVsBaseJson = med('whale-json', c, 'cpuUs') / med('base-json', c, 'cpuUs');
      row.vsBaseBinary = med('whale-binary', c, 'rps') / med('base-binary', c, 'rps');
      row.cpuVsBaseBinary = med('whale-binary', c, 'cpuUs') / med('base-binary', c, 'cpuUs');
    }
    return row;
  });
  const baseRows = base
    ? summary.map((s) => [
        String(s.concurrency),
        fmt(s.vsBaseJson, 2),
        fmt(s.cpuVsBaseJson, 2),
        fmt(s.vsBaseBinary, 2),
        fmt(s.cpuVsBaseBinary, 2),
      ])
    : [];
  const ratioRows = peers
    ? summary.map((s) => [
        String(s.concurrency),
        fmt(s.vsPlain, 2),
        fmt(s.vsFixed, 2),
        fmt(s.binaryVsFixed, 2),
        `${fmt(s.p99Whale, 2)} / ${fmt(s.p99Plain, 2)}`,
      ])
    : [];
  const text = [
    `http: whale start (V2 JSON; binary tensors) vs plain node:http + session.run vs fixed-answer node:http, shipped MNIST model,`,
    `1 real-valued image per request, autocannon closed loop; ${o.runs} alternating rounds × ${seconds} s per cell (medians), ${warmup} s warm-up per target;`,
    `load average (1 min) before / after each round: ${load.map((x) => x.toFixed(2)).join(' → ')}`,
    table(['conc', 'target', 'req/s', 'p50 ms', 'p99 ms', 'server main thread µs/req', 'failed'], rows),
    ...(peers
      ? [
          '',
          table(
            ['conc', 'whale JSON / plain', 'whale JSON / fixed', 'whale binary / fixed', 'p99 whale JSON / plain ms'],
            ratioRows,
          ),
        ]
      : []),
    ...(base
      ? [
          '',
          `this checkout (whale-*) against ${o.baseline} (base-*): ratios of the medians`,
          table(
            ['conc', 'JSON req/s', 'JSON main-thread µs/req', 'binary req/s', 'binary main-thread µs/req'],
            baseRows,
          ),
        ]
      : []),
  ].join('\n');
  return { text, cells, summary };
}
