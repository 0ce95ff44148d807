/**
 * Runs librdkafka's mock Kafka cluster (build/kafka-mock, built on demand by
 * scripts/kafka-mock/build.sh) for the duration of a test file.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { packageRoot } from '../../src/native/loader.js';

export class KafkaMock {
  private readonly lines: string[] = [];
  private waiters: Array<(line: string) => void> = [];
  private stderr = '';
  private stopping = false;

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    readonly brokers: string[],
  ) {}

  static async start(topics: Array<[string, number]>, brokers = 3): Promise<KafkaMock> {
    const root = packageRoot();
    const bin = join(root, 'build', 'kafka-mock');
    if (!existsSync(bin)) execFileSync('bash', [join(root, 'scripts', 'kafka-mock', 'build.sh')], { stdio: 'inherit' });
    const args = ['--brokers', String(brokers), ...topics.flatMap(([t, p]) => ['--topic', `${t}:${p}`])];
    const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const rl = createInterface({ input: proc.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`kafka-mock exited with ${code}`)));
    });
    const m = /^BOOTSTRAP (\S+)$/.exec(first);
    if (!m?.[1]) throw new Error(`kafka-mock: unexpected first line '${first}'`);
    const mock = new KafkaMock(proc, m[1].split(','));
    // A mock that dies mid-test looks like a broker outage to kafkajs (retries, then a join
    // timeout): say so, with what it printed, instead of leaving only the timeout.
    proc.stderr.on('data', (d: Buffer) => (mock.stderr = (mock.stderr + d.toString()).slice(-4096)));
    proc.once('exit', (code, signal) => {
      if (!mock.stopping)
        console.error(
          `kafka-mock exited unexpectedly (code ${code}, signal ${signal}): ${mock.stderr.trim() || 'no stderr'}`,
        );
    });
    rl.on('line', (line) => {
      const w = mock.waiters.shift();
      if (w) w(line);
      else mock.lines.push(line);
    });
    return mock;
  }

  /** Sends one command and waits for its answer ('ok' or throws). */
  async command(cmd: string): Promise<void> {
    const answer = new Promise<string>((resolve) => {
      const queued = this.lines.shift();
      if (queued !== undefined) resolve(queued);
      else this.waiters.push(resolve);
    });
    this.proc.stdin.write(`${cmd}\n`);
    const line = await answer;
    if (line !== 'ok') throw new Error(`kafka-mock: '${cmd}' failed: ${line}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
