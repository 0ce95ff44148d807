/**
 * npm run bench -- soak [--minutes N] [--concurrency C]
 *
 * Hardening round 2 (issue 23): minutes of mixed valid and hostile traffic at
 * the server's capacity against `whale start` in a child process (the shipped
 * MNIST model, its routing/quality routes, small body limits so the byte
 * budget is exercised). Every second: the child's RSS (/proc/<pid>/status)
 * and the event loop as a client sees it (a GET /v2/health/live timed by a
 * dedicated prober). Passes when every request that expects an answer got
 * one (a status, never a reset or a hang) and RSS returns within 1.5x of
 * its baseline after the load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { fmt, median, percentile, table } from './stats.js';

const MiB = 1024 * 1024;
const BODY_LIMIT = 4 * MiB;

export interface SoakOptions {
  minutes: number;
  /** Client workers sending valid traffic (hostile ones are a quarter of it). */
  concurrency?: number;
}

interface Sample {
  t: number;
  rssMiB: number;
  liveMs: number;
  /** The server's own event-loop delay in the last second (nodejs_eventloop_lag_max_seconds of /metrics, reset at each scrape). */
  loopMaxMs: number;
  requests: number;
}

interface Kind {
  name: string;
  hostile: boolean;
  weight: number;
  /** Statuses that count as a correct answer. */
  ok: readonly number[];
  run: (url: string, i: number) => Promise<number>;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const input = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.25) }] };
const inputText = JSON.stringify(input);
const bigValid = Buffer.from(inputText.padEnd(BODY_LIMIT - 1024, ' '));
const deep = `{"inputs":${'['.repeat(5000)}${']'.repeat(5000)}}`;
const quadratic = Array.from({ length: 5000 }, (_, i) => `the cat sat ${i % 2 ? 'not ' : ''}here ${i % 7}.`).join(' ');

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** One request with a deadline; resolves with the status (0: no answer: reset, hang or refused). */
function send(
  url: string,
  path: string,
  o: {
    method?: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
    timeoutMs?: number;
    capture?: (body: string) => void;
  } = {},
): Promise<number> {
  const u = new URL(url);
  return new Promise((resolvePromise) => {
    let done = false;
    const finish = (s: number) => {
      if (!done) {
        done = true;
        resolvePromise(s);
      }
    };
    const req = httpRequest(
      {
        host: u.hostname,
        port: Number(u.port),
        path,
        method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
        headers: { 'content-type': 'application/json', ...(o.headers ?? {}) },
      },
      (res) => {
        let text = '';
        if (o.capture) res.on('data', (d: Buffer) => (text += d.toString()));
        else res.resume();
        res.on('end', () => {
          if (o.capture) o.capture(text);
          finish(res.statusCode ?? 0);
        });
        res.on('error', () => finish(res.statusCode ?? 0));
      },
    );
    req.setTimeout(o.timeoutMs ?? 60_000, () => {
      req.destroy();
      finish(0);
    });
    req.on('error', () => finish(0));
    req.end(o.body);
  });
}

const post = (url: string, path: string, json: unknown, headers: Record<string, string> = {}) =>
  send(url, path, { body: typeof json === 'string' ? json : JSON.stringify(json), headers });

/** Sends headers and a slow trickle of body, then stops: the server must close it (408) within its request timeout. */
function slowBody(url: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolvePromise) => {
    const s = connect(Number(u.port), u.hostname, () => {
      s.write(
        'POST /v2/models/mnist/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{',
      );
    });
    let data = '';
    const drip = setInterval(() => s.writable && s.write(' '), 500);
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(drip);
      resolvePromise(Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0) || 408);
    });
    setTimeout(() => s.destroy(), 60_000).unref();
  });
}

/** Opens sockets that send nothing: the server must close them at its headers timeout. */
function idleSockets(url: string, n: number): Promise<number> {
  const u = new URL(url);
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((r) => {
          const s = connect(Number(u.port), u.hostname);
          s.on('data', () => undefined); // read, or the server's close is never seen
          s.on('error', () => undefined);
          s.on('close', () => r());
          setTimeout(() => s.destroy(), 60_000).unref();
        }),
    ),
  ).then(() => 200);
}

function kinds(): Kind[] {
  const ids: string[] = [];
  return [
    {
      name: 'v2 infer',
      hostile: false,
      weight: 30,
      ok: [200, 503],
      run: (url) => post(url, '/v2/models/mnist/infer', inputText),
    },
    {
      name: 'task infer',
      hostile: false,
      weight: 20,
      ok: [200, 503],
      run: (url, i) =>
        send(url, '/v1/tasks/mnist/infer', {
          body: JSON.stringify({ id: `soak-${i}`, ...input }),
          capture: (text) => {
            // Feedback names the router's id of the answer (parameters.feedback_id).
            const id = (JSON.parse(text || '{}') as { parameters?: { feedback_id?: string } }).parameters?.feedback_id;
            if (id && ids.length < 1000) ids.push(id);
          },
        }),
    },
    {
      name: 'feedback',
      hostile: false,
      weight: 8,
      ok: [202, 404],
      run: (url) =>
        post(url, '/v1/feedback', { requestId: ids.shift() ?? 'none', thumbs: Math.random() < 0.7 ? 'up' : 'down' }),
    },
    {
      name: 'evaluate',
      hostile: false,
      weight: 5,
      ok: [200],
      run: (url) =>
        post(url, '/v1/evaluate', {
          response: 'The cat sat on the mat. It did not move.',
          context: { context: 'A cat sat on a mat.' },
        }),
    },
    {
      name: 'reads',
      hostile: false,
      weight: 5,
      ok: [200],
      run: async (url, i) =>
        send(url, ['/v1/routing', '/v2/models/mnist/stats', '/v2/models/mnist', '/v2/health/ready'][i % 4]!),
    },
    {
      name: 'large body',
      hostile: false,
      weight: 2,
      ok: [200, 503],
      run: (url) => send(url, '/v2/models/mnist/infer', { body: bigValid }),
    },
    {
      name: 'huge id',
      hostile: true,
      weight: 3,
      ok: [400],
      run: (url) => post(url, '/v1/tasks/mnist/infer', { id: 'x'.repeat(1 * MiB), ...input }),
    },
    {
      name: 'made-up feedback',
      hostile: true,
      weight: 3,
      ok: [403, 404],
      run: (url, i) =>
        post(url, '/v1/feedback', { requestId: `r${i}`, model: `made-up-${i}-${Math.random()}`, thumbs: 'down' }),
    },
    {
      name: 'tenant claim',
      hostile: true,
      weight: 2,
      ok: [403],
      run: (url, i) =>
        post(url, '/v1/tasks/mnist/infer', { ...input, parameters: { tenant: `t-${i}-${'y'.repeat(200)}` } }),
    },
    {
      name: 'bad encoding',
      hostile: true,
      weight: 2,
      ok: [400],
      run: (url) => send(url, '/v2/models/%E0%A4%A/infer', { body: inputText }),
    },
    { name: 'deep json', hostile: true, weight: 2, ok: [400], run: (url) => post(url, '/v2/models/mnist/infer', deep) },
    {
      name: 'oversize',
      hostile: true,
      weight: 1,
      ok: [413],
      run: (url) => send(url, '/v2/models/mnist/infer', { body: Buffer.alloc(BODY_LIMIT + 1, 0x20) }),
    },
    {
      name: 'backtracking schema',
      hostile: true,
      weight: 1,
      ok: [400, 503],
      run: (url) =>
        post(url, '/v1/evaluate', {
          response: JSON.stringify('a'.repeat(30) + '!'),
          requirements: { schema: { type: 'string', pattern: '^(a+)+$' } },
        }),
    },
    {
      name: 'quadratic text',
      hostile: true,
      weight: 1,
      ok: [200, 413],
      run: (url) =>
        post(url, '/v1/evaluate', { response: quadratic, context: { context: quadratic.slice(0, 20_000) } }),
    },
    {
      name: 'evaluate $id',
      hostile: true,
      weight: 2,
      ok: [200],
      run: (url, i) =>
        post(url, '/v1/evaluate', {
          response: '"x"',
          requirements: { schema: { $id: `https://soak.test/${i % 3}`, type: i % 2 ? 'string' : 'number' } },
        }),
    },
    { name: 'slow body', hostile: true, weight: 0.3, ok: [408], run: (url) => slowBody(url) },
    { name: 'idle sockets', hostile: true, weight: 0.3, ok: [200], run: (url) => idleSockets(url, 50) },
  ];
}

function pick(list: Kind[], r: number): Kind {
  const total = list.reduce((a, k) => a + k.weight, 0);
  let x = r * total;
  for (const k of list) if ((x -= k.weight) <= 0) return k;
  return list[list.length - 1]!;
}

async function startServer(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const config = join(dir, 'whale.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      http: {
        port: 0,
        maxBodyBytes: BODY_LIMIT,
        maxBodyBytesInFlight: 4 * BODY_LIMIT,
        requestTimeoutMs: 10_000,
        headersTimeoutMs: 5_000,
      },
    }),
  );
  const child = spawn(process.execPath, [join(root, 'bin', 'whale.js'), 'start', '--config', config], {
    cwd: dir,
    env: { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'error', WHALE_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 60_000;
  while (!/on http:\/\/[\d.]+:\d+/.test(out)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`soak: whale start did not come up: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: /on (http:\/\/[\d.]+:\d+)/.exec(out)![1]! };
}

export async function benchSoak(
  o: SoakOptions,
): Promise<{ text: string; ok: boolean; samples: Sample[]; kinds: unknown[]; figures: Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'whale-soak-'));
  const { child, url } = await startServer(dir);
  const pid = child.pid!;
  const list = kinds();
  const stats = new Map(
    list.map((k) => [
      k.name,
      {
        sent: 0,
        answered: 0,
        expected: 0,
        unanswered: 0,
        maxMs: 0,
        ms: [] as number[],
        statuses: new Map<number, number>(),
      },
    ]),
  );
  let requests = 0;
  const samples: Sample[] = [];
  const lines: string[] = [];
  try {
    const concurrency = o.concurrency ?? 24;
    const valid = list.filter((k) => !k.hostile);
    const hostile = list.filter((k) => k.hostile);
    let i = 0;
    let counting = false;
    let until = 0;
    const worker = async (pool: Kind[]) => {
      while (Date.now() < until) {
        const k = pick(pool, Math.random());
        const n = i++;
        const st = stats.get(k.name)!;
        if (counting) st.sent++;
        const started = performance.now();
        const status = await k.run(url, n);
        const ms = performance.now() - started;
        if (!counting) continue;
        st.maxMs = Math.max(st.maxMs, ms);
        if (st.ms.length < 100_000) st.ms.push(ms);
        requests++;
        if (status === 0) st.unanswered++;
        else st.answered++;
        if (k.ok.includes(status)) st.expected++;
        st.statuses.set(status, (st.statuses.get(status) ?? 0) + 1);
      }
    };
    const load = () =>
      Promise.all([
        ...Array.from({ length: concurrency }, () => worker(valid)),
        ...Array.from({ length: Math.max(1, Math.floor(concurrency / 4)) }, () => worker(hostile)),
      ]);
    // Warm-up: the same mix for 20 s (code compiled, pools and caches at their working size), a few
    // seconds of rest, then the baseline (median of five samples a second apart).
    until = Date.now() + 20_000;
    await load();
    await new Promise((r) => setTimeout(r, 3000));
    const base: number[] = [];
    for (let k = 0; k < 5; k++) {
      base.push(rssMiB(pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const baseline = median(base);
    lines.push(
      `soak: whale start (pid ${pid}) at ${url}, RSS baseline ${fmt(baseline)} MiB after a 20 s warm-up; ${o.minutes} min of load, ${concurrency} valid + ${Math.max(1, Math.floor(concurrency / 4))} hostile clients`,
    );

    // Load: valid and hostile workers, the prober and the sampler.
    counting = true;
    const t0 = Date.now();
    until = t0 + o.minutes * 60_000;
    let liveWorst = 0;
    let probing = true;
    const lives: number[] = [];
    const prober = (async () => {
      while (probing) {
        const a = performance.now();
        const s = await send(url, '/v2/health/live', { timeoutMs: 30_000 });
        const ms = s === 200 ? performance.now() - a : Infinity;
        lives.push(ms);
        liveWorst = Math.max(liveWorst, ms);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    let lastLive: number[] = [];
    // The server's event-loop delay: prom-client's histogram behind /metrics is reset at each scrape, so one scrape a second gives that second's max.
    let loopMaxMs = NaN;
    const scrape = () =>
      send(url, '/metrics', {
        timeoutMs: 30_000,
        capture: (text) => {
          const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
          loopMaxMs = m ? Number(m[1]) * 1000 : NaN;
        },
      });
    await scrape();
    const sampler = setInterval(() => {
      const window = lives.splice(0);
      lastLive = window.length ? window : lastLive;
      samples.push({
        t: (Date.now() - t0) / 1000,
        rssMiB: rssMiB(pid),
        liveMs: Math.max(...lastLive),
        loopMaxMs,
        requests,
      });
      void scrape();
      const s = samples[samples.length - 1]!;
      if (samples.length % 10 === 0)
        process.stdout.write(
          `  t=${fmt(s.t)} s  RSS ${fmt(s.rssMiB)} MiB  live ${fmt(s.liveMs)} ms  event-loop max ${fmt(s.loopMaxMs)} ms  requests ${s.requests}\n`,
        );
    }, 1000);
    await load();
    const loadSeconds = (Date.now() - t0) / 1000;
    const peak = Math.max(...samples.map((s) => s.rssMiB));
    const liveDuring = samples
      .map((s) => s.liveMs)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const loopDuring = samples
      .map((s) => s.loopMaxMs)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);

    // After the load: RSS must come back within 1.5x of the baseline (30 s at most), still sampled every second.
    const settleEnd = Date.now() + 30_000;
    let after = rssMiB(pid);
    while (after >= 1.5 * baseline && Date.now() < settleEnd) {
      await new Promise((r) => setTimeout(r, 1000));
      after = rssMiB(pid);
    }
    probing = false;
    clearInterval(sampler);
    await prober;
    const settleSeconds = (Date.now() - t0) / 1000 - loadSeconds;

    const unanswered = [...stats.values()].reduce((a, s) => a + s.unanswered, 0);
    const rows = list.map((k) => {
      const s = stats.get(k.name)!;
      const codes = [...s.statuses]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c}:${n}`)
        .join(' ');
      const sorted = s.ms.sort((a, b) => a - b);
      return [
        k.name,
        k.hostile ? 'hostile' : 'valid',
        String(s.sent),
        String(s.unanswered),
        `${s.sent ? fmt((100 * s.expected) / s.sent) : '-'} %`,
        sorted.length ? fmt(percentile(sorted, 0.5)) : '-',
        fmt(s.maxMs),
        codes,
      ];
    });
    lines.push(
      table(['traffic', 'kind', 'sent', 'unanswered', 'expected status', 'p50 ms', 'max ms', 'statuses'], rows),
    );
    const figures = {
      baselineMiB: baseline,
      peakMiB: peak,
      afterMiB: after,
      afterRatio: after / baseline,
      settleSeconds,
      requests,
      requestsPerSecond: requests / loadSeconds,
      unanswered,
      liveP50Ms: percentile(liveDuring, 0.5),
      liveP99Ms: percentile(liveDuring, 0.99),
      liveWorstMs: liveWorst,
      loopMaxP50Ms: percentile(loopDuring, 0.5),
      loopMaxP99Ms: percentile(loopDuring, 0.99),
      loopMaxWorstMs: loopDuring[loopDuring.length - 1] ?? NaN,
    };
    const ok = unanswered === 0 && after < 1.5 * baseline && Number.isFinite(liveWorst);
    lines.push(
      `requests: ${requests} in ${fmt(loadSeconds)} s (${fmt(figures.requestsPerSecond)}/s), unanswered: ${unanswered}`,
      `RSS: baseline ${fmt(baseline)} MiB, peak ${fmt(peak)} MiB, after ${fmt(after)} MiB (${fmt(figures.afterRatio)}x baseline, ${fmt(settleSeconds)} s after the load)`,
      `GET /v2/health/live as a client sees it (worst per second): p50 ${fmt(figures.liveP50Ms)} ms, p99 ${fmt(figures.liveP99Ms)} ms, worst ${fmt(liveWorst)} ms`,
      `server event-loop delay (max per second, /metrics): p50 ${fmt(figures.loopMaxP50Ms)} ms, p99 ${fmt(figures.loopMaxP99Ms)} ms, worst ${fmt(figures.loopMaxWorstMs)} ms`,
      ok
        ? 'PASS: every request answered, RSS back within 1.5x of its baseline'
        : `FAIL: ${unanswered} unanswered, RSS ${fmt(figures.afterRatio)}x baseline`,
    );
    return { text: lines.join('\n'), ok, samples, kinds: rows, figures };
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
  }
}
