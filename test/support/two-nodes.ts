/**
 * Two `whale start` nodes (bin/whale.js, so dist/ must be built: `npm run build:ts`, which
 * `npm test` runs first) on one librdkafka mock cluster and one redis-server, as
 * scripts/cluster-local.mjs runs them: the system tier's fixture. Both nodes start
 * concurrently (a consumer group's second member waits out a rebalance on the mock, so
 * starting them one after the other would double that wait). stop() sends SIGINT to each
 * node, then stops Redis and the mock; call it in afterAll even when start() failed half-way
 * (it throws after stopping what it started).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../../src/native/loader.js';
import { dlqTopic } from '../../src/transport/bus.js';
import { allTopics } from '../../src/transport/topics.js';
import { KafkaMock } from './kafka-mock.js';
import { freePort } from './ports.js';
import { RedisServer } from './redis-server.js';

const root = packageRoot();
const whale = join(root, 'bin', 'whale.js');

export interface WhaleNode {
  /** node-a, node-b (WHALE_NODE_ID). */
  id: string;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The whale.config.json the node was started with. */
  configPath: string;
  /** The last 200 kB the node wrote (stdout and stderr): add it to assertion messages. */
  output(): string;
  proc: ChildProcessWithoutNullStreams;
}

export interface TwoNodesOptions {
  /**
   * whale.config.json of both nodes (model paths relative to the repository root or absolute).
   * Default: DEFAULT_CONFIG (the shipped MNIST ONNX and TF.js models, deep = both).
   */
  config?: Record<string, unknown>;
  /** Per-node sections merged (shallowly, per top-level key) over `config`: [node-a, node-b]. */
  nodeConfig?: [Record<string, unknown>?, Record<string, unknown>?];
  /** Extra environment of both nodes (e.g. WHALE_ALERT_RULES). */
  env?: Record<string, string>;
  /** Extra topics created on the mock (name, partitions), beside every AsyncAPI topic and its DLQ. */
  topics?: Array<[string, number]>;
  /** How long each node may take to answer /v2/health/ready (default 90 s). */
  readyTimeoutMs?: number;
}

export interface TwoNodes {
  a: WhaleNode;
  b: WhaleNode;
  nodes: [WhaleNode, WhaleNode];
  kafka: KafkaMock;
  redis: RedisServer;
  /** KAFKA_BROKERS, REDIS_URL, WHALE_KAFKA_IDEMPOTENT=0, …: for more processes on the same cluster (whale federate). */
  env: Record<string, string>;
  /** A scratch directory removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export const DEFAULT_CONFIG: Record<string, unknown> = {
  http: { host: '127.0.0.1' },
  models: [
    { name: 'mnist', adapter: 'onnx', path: 'models/mnist/model.onnx', version: '1' },
    { name: 'mnist-tfjs', adapter: 'tfjs', path: 'models/mnist-tfjs', cost: 2 },
  ],
  pipeline: { defaultModel: 'mnist', deep: { models: ['mnist', 'mnist-tfjs'] } },
  // A member joining a group waits for the rebalance, about the session timeout on the mock: Kafka's smallest.
  kafka: { sessionTimeoutMs: 6_000 },
  shutdownGraceMs: 2_000,
};

/** One MNIST image (a bar in the middle, shifted by `shift` pixels) as a V2 request body. */
export function mnistInput(shift = 0): { inputs: unknown[] } {
  const data = Array.from({ length: 784 }, (_, i) => (i % 28 > 10 + shift && i % 28 < 18 + shift ? 1 : 0));
  return { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data }] };
}

export async function startTwoNodes(o: TwoNodesOptions = {}): Promise<TwoNodes> {
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run npm run build:ts (npm test does) before the system tests');
  const dir = mkdtempSync(join(tmpdir(), 'whale-two-nodes-'));
  const started: { kafka?: KafkaMock; redis?: RedisServer; nodes: WhaleNode[] } = { nodes: [] };
  const stop = async () => {
    await Promise.all(started.nodes.map((n) => stopNode(n)));
    await started.redis?.stop();
    await started.kafka?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const topics = ['whale.replies', ...allTopics().flatMap((t) => [t, dlqTopic(t)])];
    const [kafka, redis] = await Promise.all([
      KafkaMock.start([...topics.map((t): [string, number] => [t, 3]), ...(o.topics ?? [])]),
      RedisServer.start(),
    ]);
    started.kafka = kafka;
    started.redis = redis;
    const env: Record<string, string> = {
      KAFKA_BROKERS: kafka.brokers.join(','),
      REDIS_URL: redis.url,
      WHALE_KAFKA_IDEMPOTENT: '0',
      WHALE_LOG_LEVEL: 'warn',
    };
    const base = withAbsoluteModels(o.config ?? DEFAULT_CONFIG);
    const nodes = await Promise.all(
      (['node-a', 'node-b'] as const).map(async (id, i) => {
        const home = join(dir, id);
        mkdirSync(home, { recursive: true });
        const configPath = join(home, 'whale.config.json');
        const extra = o.nodeConfig?.[i] ?? {};
        writeFileSync(configPath, JSON.stringify({ ...base, ...withAbsoluteModels(extra) }, null, 2));
        const port = await freePort();
        const proc = spawn(process.execPath, [whale, 'start', '--config', configPath, '--port', String(port)], {
          cwd: home,
          env: {
            ...process.env,
            ...env,
            WHALE_NODE_ID: id,
            WHALE_CACHE_DIR: join(home, 'cache'),
            WHALE_METRICS_DB: 'off',
            ...(o.env ?? {}),
          },
        });
        let out = '';
        const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
        proc.stdout.on('data', keep);
        proc.stderr.on('data', keep);
        const node: WhaleNode = { id, url: `http://127.0.0.1:${port}`, configPath, output: () => out, proc };
        started.nodes.push(node);
        return node;
      }),
    );
    await Promise.all(nodes.map((n) => ready(n, o.readyTimeoutMs ?? 90_000)));
    const [a, b] = nodes as [WhaleNode, WhaleNode];
    return { a, b, nodes: [a, b], kafka, redis, env, dir, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Model paths made absolute against the repository root (the nodes run in their own directories). */
function withAbsoluteModels(config: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(config.models)) return config;
  return {
    ...config,
    models: config.models.map((m: Record<string, unknown>) =>
      typeof m.path === 'string' && !m.path.startsWith('/') ? { ...m, path: join(root, m.path) } : m,
    ),
  };
}

async function ready(n: WhaleNode, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (n.proc.exitCode !== null) throw new Error(`${n.id} exited with ${n.proc.exitCode}: ${n.output().slice(-3000)}`);
    const ok = await fetch(`${n.url}/v2/health/ready`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${n.id} was not ready within ${timeoutMs / 1000} s: ${n.output().slice(-3000)}`);
}

async function stopNode(n: WhaleNode): Promise<void> {
  const p = n.proc;
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGINT');
  const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
