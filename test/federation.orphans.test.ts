// Issue 23, item 11, from outside: learners started by `whale federate --processes 2` die with their coordinator
// (kill -9 included), and a learner on its own gives up after --give-up-after-ms of silence. Kafka is librdkafka's
// mock cluster; every process is the real CLI (node bin/whale.js).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FEDERATION_TOPICS } from '../src/core/federation/orchestration/topics.js';
import { until } from './helpers.js';
import { KafkaMock } from './support/kafka-mock.js';

const root = resolve(import.meta.dirname, '..');
const whale = join(root, 'bin', 'whale.js');

/** Live (not zombie) processes whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Running: exists and is not a zombie (an orphan re-parented to a PID 1 that does not reap stays a zombie). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [whale, ...args], {
    env: { ...process.env, REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '', ...env },
  });
  const io = { out: '', err: '', exit: undefined as number | null | undefined };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r((io.exit = code))));
  return { child, io, exited };
}

describe.runIf(process.platform === 'linux')('learner processes and a coordinator that dies (issue 23 item 11)', () => {
  let mock: KafkaMock;
  let kafka: Record<string, string>;
  beforeAll(async () => {
    const topics = [
      FEDERATION_TOPICS.clients,
      FEDERATION_TOPICS.rounds,
      FEDERATION_TOPICS.updates,
      FEDERATION_TOPICS.events,
      FEDERATION_TOPICS.metrics,
      'whale.replies',
    ];
    mock = await KafkaMock.start(topics.map((t) => [t, 1]));
    kafka = { KAFKA_BROKERS: mock.brokers.join(','), WHALE_KAFKA_IDEMPOTENT: '0' };
  }, 60_000);
  afterAll(() => mock?.stop());

  it('kill -9 of `whale federate --processes 2`: its learners are gone within a few seconds', async () => {
    const store = mkdtempSync(join(tmpdir(), 'whale-orphans-'));
    const args = [
      'federate',
      '--processes',
      '2',
      '--clients',
      '4',
      '--fraction',
      '1',
      '--rounds',
      '200',
      '--train-count',
      '400',
      '--batch',
      '50',
      '--store-dir',
      store,
    ];
    const { child, io, exited } = run(args, kafka);
    let learners: number[] = [];
    try {
      // Learners up and a round done: they are in the middle of the federation.
      expect(
        await until(() => /^round +1 /m.test(io.out) || io.exit !== undefined, 150_000),
        `${io.out}\n${io.err}`,
      ).toBe(true);
      expect(io.exit, `${io.out}\n${io.err}`).toBeUndefined();
      learners = childrenOf(child.pid!);
      expect(learners).toHaveLength(2);
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await exited;
      expect(
        await until(() => learners.every((p) => !running(p)), 10_000),
        `still running: ${learners.filter(running).join(', ')}`,
      ).toBe(true);
      expect(Date.now() - killedAt).toBeLessThan(5_000);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
      for (const p of learners.filter(running)) process.kill(p, 'SIGKILL');
    }
  }, 200_000);

  it('a learner on its own gives up after --give-up-after-ms without a word from its coordinator (exit 1, one line)', async () => {
    const store = mkdtempSync(join(tmpdir(), 'whale-orphans-'));
    const args = [
      'learner',
      '--federation',
      'nobody-home',
      '--learner-id',
      'lonely',
      '--clients',
      '0',
      '--total-clients',
      '2',
      '--train-count',
      '100',
      '--store-dir',
      store,
      '--give-up-after-ms',
      '1500',
    ];
    const { child, io, exited } = run(args, kafka);
    try {
      expect(await until(() => /^READY lonely/m.test(io.out) || io.exit !== undefined, 120_000), io.err).toBe(true);
      const readyAt = Date.now();
      expect(await exited).toBe(1);
      expect(Date.now() - readyAt).toBeLessThan(8_000);
      expect(io.err).toMatch(
        /^whale learner: no word from the coordinator of nobody-home for 2 s: leaving the federation$/m,
      );
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
    }
  }, 150_000);
});
