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
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
