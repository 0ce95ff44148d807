// Issue 23, item 12, from outside: `whale start` as a child process while Redis goes away and comes back, and with a
// Redis or a Kafka that cannot be reached at start. What counts is what an operator sees: stderr stays readable (no
// "[ioredis] Unhandled error event" stack traces, no wall of kafkajs lines), a start that cannot reach a backend
// ends with one `whale: … [ERR_UNAVAILABLE]` line and exit 1, within a bounded time.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { until } from './helpers.js';
import { RedisServer } from './support/redis-server.js';

const root = resolve(import.meta.dirname, '..');
const whale = join(root, 'bin', 'whale.js');

function start(env: Record<string, string>, config?: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'whale-backends-'));
  if (config) writeFileSync(join(dir, 'whale.config.json'), JSON.stringify(config));
  const t0 = Date.now();
  const child = spawn(process.execPath, [whale, 'start', '--port', '0'], {
    cwd: dir,
    env: {
      ...process.env,
      KAFKA_BROKERS: '',
      REDIS_URL: '',
      WHALE_LOG_LEVEL: 'warn',
      WHALE_CONFIG: '',
      WHALE_CACHE_DIR: join(dir, 'cache'),
      ...env,
    },
  });
  const io = { out: '', err: '', exit: undefined as number | null | undefined, seconds: 0 };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      io.seconds = (Date.now() - t0) / 1000;
      r((io.exit = code));
    }),
  );
  return { child, io, exited };
}

const noStackTraces = (text: string) => {
  expect(text).not.toMatch(/Unhandled error event/);
  expect(text).not.toMatch(/^\s+at /m);
  expect(text).not.toMatch(/Reached the max retries per request/);
};

/** A TCP server that accepts connections and never answers (a broker that hangs). */
async function silentListener(): Promise<{ port: number; close: () => void }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}

describe('whale start and its backends (issue 23 item 12)', () => {
  it('Redis going away under a running node: no stack-trace flood, the outage logged once, back to ready when Redis returns', async () => {
    const redis = await RedisServer.start();
    const { child, io, exited } = start({ REDIS_URL: redis.url });
    try {
      expect(await until(() => /serving /.test(io.out) || io.exit !== undefined, 30_000), io.err).toBe(true);
      const url = /on (http:\/\/[\d.]+:\d+)/.exec(io.out)![1]!;
      const before = io.err.length;
      await redis.kill();
      // 6 s of outage with readiness probes and requests, as a load balancer and clients would send.
      const end = Date.now() + 6_000;
      while (Date.now() < end) {
        await fetch(`${url}/v2/health/ready`).catch(() => undefined);
        await fetch(`${url}/healthz`).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 250));
      }
      const during = io.err.slice(before);
      noStackTraces(during);
      const lines = during.split('\n').filter(Boolean);
      expect(lines.length, during).toBeLessThanOrEqual(4);
      expect(lines.filter((l) => /redis unreachable/.test(l))).toHaveLength(1);
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(503);
      await redis.launch();
      expect(await until(async () => (await fetch(`${url}/v2/health/ready`)).status === 200, 15_000)).toBe(true);
      noStackTraces(io.err);
      child.kill('SIGINT');
      expect(await exited, io.err.slice(-4000)).toBe(0);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
      await redis.stop();
    }
  }, 90_000);

  it('Redis unreachable at start: exit 1 with one `whale: redis: … [ERR_UNAVAILABLE]` line (credentials hidden)', async () => {
    const { io, exited } = start({ REDIS_URL: 'redis://user:s3cret@127.0.0.1:1' });
    expect(await exited).toBe(1);
    expect(io.err).toMatch(
      /^whale: redis: cannot reach redis:\/\/user:\*\*\*@127\.0\.0\.1:1 \(REDIS_URL\): connect ECONNREFUSED 127\.0\.0\.1:1 \[ERR_UNAVAILABLE\]$/m,
    );
    expect(io.err).not.toContain('s3cret');
    noStackTraces(io.err);
    expect(io.err.split('\n').filter(Boolean).length, io.err).toBeLessThanOrEqual(3);
    expect(io.seconds).toBeLessThan(20);
  }, 40_000);

  it('Kafka refusing connections (topic provisioning off): fails after kafka.connectTimeoutMs with one line, no kafkajs lines', async () => {
    const { io, exited } = start(
      { KAFKA_BROKERS: '127.0.0.1:1' },
      { kafka: { topics: { provision: false }, connectTimeoutMs: 2000 } },
    );
    expect(await exited).toBe(1);
    expect(io.err).toMatch(
      /^whale: kafka: cannot reach 127\.0\.0\.1:1 within 2000 ms: .*ECONNREFUSED.* \[ERR_UNAVAILABLE\]\n$/,
    );
    expect(io.seconds).toBeLessThan(15);
  }, 40_000);

  it('a Kafka broker that accepts and never answers: fails within the default 10 s connect timeout, one line', async () => {
    const broker = await silentListener();
    try {
      const { io, exited } = start({ KAFKA_BROKERS: `127.0.0.1:${broker.port}` });
      expect(await exited).toBe(1);
      expect(io.err).toMatch(
        new RegExp(
          `^whale: kafka: cannot reach 127\\.0\\.0\\.1:${broker.port} within 10000 ms.* \\[ERR_UNAVAILABLE\\]\\n$`,
        ),
      );
      expect(io.seconds).toBeLessThan(25);
    } finally {
      broker.close();
    }
  }, 60_000);
});
