/**
 * Issue 21, item 4, end to end in the service: `whale start` (dist/, a child process) serves `mnist`
 * version 1 → a federation started over HTTP (POST /v1/federations) with three learner processes on the
 * Kafka mock cluster, each getting its local data through the DataRequest service on its own node → when
 * it finishes, /v2/models/mnist reports version 2 with its provenance; a client loop sending requests
 * throughout sees zero failed requests; accuracy over HTTP on real MNIST test digits is at least version 1's.
 * The data never reaches the coordinator's process: none of the data blobs is in the coordinator's store.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createApiKey } from '../src/config/api-keys.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { dlqTopic } from '../src/transport/bus.js';
import { allTopics } from '../src/transport/topics.js';
import { FEDERATION_TOPICS } from '../src/core/federation/orchestration/topics.js';
import { KafkaMock } from './support/kafka-mock.js';
import { freePort } from './support/ports.js';

const root = join(import.meta.dirname, '..');
// The learners run the built file (dist/, as whale start does): a cold vite-node transform per process costs a minute here.
const LEARNER = join(root, 'dist', 'test', 'support', 'service-learner.js');
const operator = createApiKey('operator');
const HELD_OUT = 2000;
const PER_LEARNER = 2000;
const dir = mkdtempSync(join(tmpdir(), 'whale-fed-service-'));
const storeDir = join(dir, 'store');
const procs: ChildProcessWithoutNullStreams[] = [];
let kafka: KafkaMock | undefined;
let url = '';
let learners: ReturnType<typeof learner>[] = [];
let serverOut = '';

const env = () => ({
  ...process.env,
  KAFKA_BROKERS: kafka!.brokers.join(','),
  WHALE_KAFKA_IDEMPOTENT: '0',
  WHALE_LOG_LEVEL: 'warn',
  WHALE_METRICS_DB: 'off',
  WHALE_CACHE_DIR: join(dir, 'cache'),
});

/** A learner process; resolves with its lines once it printed READY. */
function learner(i: number): { lines: string[]; ready: Promise<void>; exited: Promise<number | null> } {
  const data = join(dir, `learner-${i}`);
  mkdirSync(data, { recursive: true });
  const train = readMnist('train', { offset: 10_000 + i * PER_LEARNER, count: PER_LEARNER });
  writeFileSync(
    join(data, 'images.u8'),
    Uint8Array.from(train.images, (p) => Math.round(p * 255)),
  );
  writeFileSync(join(data, 'labels.u8'), Uint8Array.from(train.labels));
  const p = spawn(
    process.execPath,
    [LEARNER, '--federation', 'mnist-service', '--learner-id', `l${i}`, '--data-dir', data, '--store-dir', storeDir],
    { cwd: root, env: env() },
  );
  procs.push(p);
  const lines: string[] = [];
  createInterface({ input: p.stdout }).on('line', (l) => lines.push(l));
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  const ready = new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (lines.includes('READY')) resolve(clearInterval(t));
      if (p.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`learner ${i} exited ${p.exitCode}: ${err}`));
      }
    }, 100);
  });
  ready.catch(() => undefined); // awaited by the test; a learner that dies before is reported there
  return { lines, ready, exited };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads whatever JSON the server answered
type AnyJson = any;

async function json(path: string, init?: RequestInit): Promise<{ status: number; body: AnyJson }> {
  const r = await fetch(`${url}${path}`, init);
  return { status: r.status, body: await r.json() };
}

/** Share of the held-out digits a version classifies right, over HTTP (batches of 100 rows). */
async function httpAccuracy(path: string): Promise<number> {
  const test = readMnist('test', { count: HELD_OUT });
  let right = 0;
  for (let at = 0; at < HELD_OUT; at += 100) {
    const rows = test.images.subarray(at * 784, (at + 100) * 784);
    const r = await json(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [100, 784], data: Array.from(rows) }],
      }),
    });
    const scores = r.body.outputs[0].data as number[];
    for (let k = 0; k < 100; k++) {
      const row = scores.slice(k * 10, k * 10 + 10);
      if (row.indexOf(Math.max(...row)) === test.labels[at + k]) right++;
    }
  }
  return right / HELD_OUT;
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js')) || !existsSync(LEARNER))
    throw new Error('dist/ is missing: run npm run build:ts (npm test does) before this test');
  const topics = ['whale.replies', ...new Set([...allTopics(), ...Object.values(FEDERATION_TOPICS)])].flatMap((t) => [
    t,
    dlqTopic(t),
  ]);
  kafka = await KafkaMock.start(topics.map((t): [string, number] => [t, 1]));
  // The learners load their data and join the cluster while the server starts (they wait for the federation).
  learners = [0, 1, 2].map(learner);
  const config = join(dir, 'whale.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      http: { host: '127.0.0.1' },
      models: [{ name: 'mnist', adapter: 'onnx', path: join(root, 'models/mnist/model.onnx'), version: '1' }],
      auth: { keys: [operator.record] },
      shutdownGraceMs: 2000,
    }),
  );
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const server = spawn(
    process.execPath,
    [join(root, 'bin', 'whale.js'), 'start', '--config', config, '--port', String(port)],
    {
      cwd: dir,
      env: { ...env(), WHALE_NODE_ID: 'coordinator' },
    },
  );
  procs.push(server);
  const keep = (d: Buffer) => (serverOut = (serverOut + d.toString()).slice(-20_000));
  server.stdout.on('data', keep);
  server.stderr.on('data', keep);
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`whale start exited ${server.exitCode}: ${serverOut}`);
    if (
      await fetch(`${url}/v2/health/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 600) throw new Error(`whale start not ready in 60 s: ${serverOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);

afterAll(async () => {
  for (const p of procs.reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
  await kafka?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('a federation inside whale start', () => {
  it('version 2 from three learner processes, swapped in under load without a failed request', async () => {
    const started = performance.now();
    await Promise.all(learners.map((l) => l.ready));
    const ms = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
    console.log(`learners ready after ${ms()}`);

    // The client loop: from before the federation until after the swap.
    const seen = { '1': 0, '2': 0 } as Record<string, number>;
    const failures: string[] = [];
    let sending = true;
    const digit = Array.from(readMnist('test', { offset: 5000, count: 1 }).images);
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit }] });
    const loop = async () => {
      while (sending) {
        const r = await fetch(`${url}/v2/models/mnist/infer`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        })
          .then(async (res) => ({ status: res.status, body: await res.json() }))
          .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
        if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body)}`);
        else seen[r.body.model_version] = (seen[r.body.model_version] ?? 0) + 1;
      }
    };
    const loops = [loop(), loop()];

    const created = await json('/v1/federations', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operator.key}` },
      body: JSON.stringify({
        id: 'mnist-service',
        model: 'mnist',
        config: {
          rounds: 2,
          minClients: 3,
          expectClients: 3,
          epochs: 1,
          batch: 10,
          lr: 0.03,
          storeDir,
          heldOut: { dataset: 'mnist-test', count: HELD_OUT },
          gate: { margin: 0 },
          roundTimeoutMs: 60_000,
        },
      }),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    let info: AnyJson = created.body;
    let last = '';
    while (!['completed', 'failed', 'stopped'].includes(info.state)) {
      await new Promise((r) => setTimeout(r, 500));
      info = (await json('/v1/federations/mnist-service')).body;
      const now = `${info.state} rounds ${info.rounds.length} clients ${info.clients.length}`;
      if (now !== last) console.log(`${ms()}: ${(last = now)}`);
    }
    await new Promise((r) => setTimeout(r, 300)); // requests after the swap
    sending = false;
    await Promise.all(loops);
    console.log(
      `federation in the service: ${info.state}, served v1 ${JSON.stringify(info.servedEvaluation)}, rounds ${JSON.stringify(
        info.rounds.map((r: AnyJson) => ({
          round: r.round,
          accuracy: r.accuracy,
          loss: r.loss?.toFixed(4),
          gate: r.gate,
          version: r.version,
        })),
      )}; client loop: ${seen['1']} answers from v1, ${seen['2'] ?? 0} from v2, ${failures.length} failed; ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(info.state, `${info.error ?? ''}\n${serverOut.slice(-3000)}`).toBe('completed');
    expect(info.rounds).toHaveLength(2);
    expect(info.rounds.every((r: AnyJson) => typeof r.accuracy === 'number' && typeof r.loss === 'number')).toBe(true);
    expect(info.clients.sort()).toEqual(['l0-c0', 'l1-c0', 'l2-c0']);
    expect(info.rejected).toEqual({});
    expect(info.versions[0]).toBe('2');

    expect(failures).toEqual([]);
    expect(seen['1']).toBeGreaterThan(0);
    expect(seen['2']).toBeGreaterThan(0);

    const meta = (await json('/v2/models/mnist')).body;
    expect(meta.versions[0]).toBe(info.versions.at(-1));
    expect(meta.versions).toContain('1');
    const v2 = (await json('/v2/models/mnist/versions/2')).body.version_info;
    expect(v2.provenance).toMatchObject({
      source: 'federation',
      federationId: 'mnist-service',
      round: expect.any(Number),
    });
    expect(v2.provenance.evaluation.accuracy).toBeGreaterThanOrEqual(info.servedEvaluation.accuracy);

    // The coordinator's round figures reach the server's /metrics (the families monitoring and the dashboard read).
    await expect
      .poll(async () => (await fetch(`${url}/metrics`)).text(), { timeout: 15_000 })
      .toMatch(/whale_federation_rounds_total\{[^}]*\} [1-9]/);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/whale_federation_accuracy_ratio\{[^}]*\} 0\.9/);

    const acc1 = await httpAccuracy('/v2/models/mnist/versions/1/infer');
    const acc2 = await httpAccuracy('/v2/models/mnist/versions/2/infer');
    console.log(`accuracy over HTTP on ${HELD_OUT} MNIST test digits: v1 ${acc1}, v2 ${acc2}`);
    expect(acc2).toBeGreaterThanOrEqual(acc1);

    // Data stayed on the learners' nodes: each got its two files through its own DataRequest responder,
    // and none of those blobs is in the store the coordinator reads.
    await Promise.all(learners.map((l) => l.exited));
    const dataShas = learners.flatMap((l) => {
      const line = l.lines.find((x) => x.startsWith('DATA '))!.split(' ');
      expect(line[3]).toBe('2');
      return [line[1], line[2]];
    });
    const walk = (d: string): string[] =>
      readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
    const stored = walk(storeDir).map((f) => createHash('sha256').update(readFileSync(f)).digest('hex'));
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.filter((s) => dataShas.includes(s))).toEqual([]);
    expect(stored.join(' ')).not.toMatch(new RegExp(dataShas.join('|')));
  }, 400_000);
});
