#!/usr/bin/env node
// The multi-node topology of deploy/docker-compose.yml as local processes, for machines without
// containers: a Kafka peer (librdkafka's mock cluster, build/kafka-mock), a throwaway redis-server,
// two `whale start` nodes sharing them, and a federation (`whale federate --processes 1`: a
// coordinator and one learner process over Kafka). Without --smoke it runs until Ctrl-C; with
// --smoke it checks each part, tears everything down and exits 0 (or 1 naming what failed).
// Needs `npm run build` (dist/ and the addon) and the test tools (scripts/ensure-toolchain.sh).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    rounds: { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(
    'Usage: scripts/cluster-local.sh [--smoke] [--rounds N]\nKafka mock + redis-server + two whale nodes + a federation, as local processes.',
  );
  process.exit(0);
}

const procs = [];
const work = mkdtempSync(join(tmpdir(), 'whale-cluster-'));
const log = (msg) => console.log(`cluster: ${msg}`);

function start(name, cmd, argv, env = {}) {
  const p = spawn(cmd, argv, { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  p.out = '';
  p.stdout.on('data', (d) => (p.out = (p.out + d).slice(-20_000)));
  p.stderr.on('data', (d) => (p.out = (p.out + d).slice(-20_000)));
  p.exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  p.label = name;
  procs.push(p);
  return p;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });

async function until(what, check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopAll() {
  for (const p of procs.reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    p.kill('SIGINT');
    const done = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r(undefined), 15_000))]);
    if (!done) p.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
}

async function main() {
  for (const need of [join(root, 'dist', 'src', 'cli', 'main.js')]) {
    if (!existsSync(need)) throw new Error(`${need} is missing: run npm run build first`);
  }
  const mockBin = join(root, 'build', 'kafka-mock');
  if (!existsSync(mockBin))
    execFileSync('bash', [join(root, 'scripts', 'kafka-mock', 'build.sh')], { stdio: 'inherit' });
  const { allTopics } = await import(join(root, 'dist', 'src', 'transport', 'topics.js'));
  const { dlqTopic } = await import(join(root, 'dist', 'src', 'transport', 'bus.js'));
  const topics = ['whale.replies', ...allTopics().flatMap((t) => [t, dlqTopic(t)])];

  const kafka = start('kafka', mockBin, ['--brokers', '3', ...topics.flatMap((t) => ['--topic', `${t}:3`])]);
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: kafka.stdout }).once('line', resolve);
    kafka.once('exit', (code) => reject(new Error(`the Kafka mock exited (${code}): ${kafka.out}`)));
  });
  const brokers = /^BOOTSTRAP (\S+)$/.exec(first)?.[1];
  if (!brokers) throw new Error(`the Kafka mock printed '${first}'`);
  log(`kafka (librdkafka mock, 3 brokers) at ${brokers}`);

  const redisPort = await freePort();
  start('redis', 'redis-server', [
    '--port',
    String(redisPort),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await until(
    'redis-server did not answer',
    async () => {
      const { default: Redis } = await import('ioredis');
      const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    },
    10_000,
  );
  log(`redis at ${redisUrl}`);

  // The mock cluster cannot initialise idempotent producers (a real cluster can): off here.
  const shared = { KAFKA_BROKERS: brokers, REDIS_URL: redisUrl, WHALE_LOG_LEVEL: 'warn', WHALE_KAFKA_IDEMPOTENT: '0' };
  const nodes = [];
  for (const id of ['node-a', 'node-b']) {
    const port = await freePort();
    const env = { ...shared, WHALE_NODE_ID: id, WHALE_CACHE_DIR: join(work, id), WHALE_METRICS_DB: 'off' };
    nodes.push({
      id,
      url: `http://127.0.0.1:${port}`,
      proc: start(id, process.execPath, [join(root, 'bin', 'whale.js'), 'start', '--port', String(port)], env),
    });
  }
  for (const n of nodes) {
    await until(
      `${n.id} was not ready`,
      async () => (await fetch(`${n.url}/v2/health/ready`)).status === 200,
      90_000,
    ).catch((err) => {
      throw new Error(`${err.message}: ${n.proc.out.slice(-2000)}`);
    });
    log(`${n.id} serving at ${n.url}`);
  }

  const fed = start(
    'federation',
    process.execPath,
    [
      join(root, 'bin', 'whale.js'),
      'federate',
      '--model',
      '2nn',
      '--processes',
      '1',
      '--clients',
      '2',
      '--fraction',
      '1',
      '--rounds',
      String(args.rounds),
      '--train-count',
      '600',
      '--store-dir',
      join(work, 'federation'),
    ],
    shared,
  );
  log('federation: coordinator + 1 learner process over Kafka');

  if (!args.smoke) {
    log('running; Ctrl-C stops everything');
    await new Promise((resolve) => process.once('SIGINT', resolve));
    return 0;
  }

  const failures = [];
  const image = Array.from({ length: 784 }, (_, i) => (i % 28 > 10 && i % 28 < 18 ? 1 : 0));
  for (const n of nodes) {
    const res = await fetch(`${n.url}/v2/models/mnist/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: image }] }),
    });
    const body = await res.json();
    if (res.status !== 200 || body.outputs?.[0]?.shape?.[1] !== 10)
      failures.push(`${n.id}: infer answered ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    const metrics = await (await fetch(`${n.url}/metrics`)).text();
    if (!/whale_/.test(metrics)) failures.push(`${n.id}: /metrics has no whale_ family`);
  }
  const fedEnd = await Promise.race([fed.exited, new Promise((r) => setTimeout(() => r(undefined), 150_000))]);
  if (!fedEnd || fedEnd.code !== 0)
    failures.push(`federation: ${fedEnd ? `exit ${fedEnd.code}` : 'did not finish in 150 s'}: ${fed.out.slice(-2000)}`);
  else
    log(
      `federation finished: ${fed.out
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('summary'))
        .join(' ')}`,
    );
  for (const n of nodes) {
    n.proc.kill('SIGINT');
    const { code } = await n.proc.exited;
    if (code !== 0) failures.push(`${n.id}: exit ${code} on SIGINT: ${n.proc.out.slice(-1000)}`);
  }
  for (const f of failures) console.error(`cluster: FAILED ${f}`);
  log(failures.length === 0 ? 'smoke check passed' : `${failures.length} check(s) failed`);
  return failures.length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`cluster: ${err.message}`);
} finally {
  await stopAll();
}
process.exit(code);
