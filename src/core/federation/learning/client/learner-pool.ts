/**
 * Starts learners as child processes, clients split evenly among them, and
 * watches them: a learner that exits before the federation ends is reported
 * (callback and a FederationLearnerLeft on the bus, so the coordinator stops
 * waiting for its clients).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { WhaleError } from '../../../../common/errors.js';
import type { Bus } from '../../../../transport/bus.js';
import { createEnvelope } from '../../../../transport/envelope.js';
import { MESSAGE } from '../../orchestration/messages.js';
import { FEDERATION_TOPICS } from '../../orchestration/topics.js';

export interface LearnerPoolOptions {
  federationId: string;
  /** K processes sharing `totalClients` client indices (learner k gets i % K == k, as `--clients I,J,...`). */
  processes: number;
  totalClients: number;
  /**
   * Or one process per entry, with its own id and arguments (no `--clients`): the learners of a
   * federation config (`whale learner --config federation.json --learner ID`). Overrides processes/totalClients.
   */
  learners?: ReadonlyArray<{ id: string; args: readonly string[] }>;
  /**
   * Arguments every learner gets besides `--learner-id ID --clients I,J,... --parent-pid PID` (the application's
   * learner command line). The learner must exit when the process PID is gone: its stdin is a pipe from this
   * process that closes when this process dies, however it dies (kill -9 included).
   */
  args: string[];
  /** The command that starts a learner (the MNIST app: node bin/whale.js learner). */
  command: string[];
  /** The learners' whole environment (default: inherited from this process). */
  env?: NodeJS.ProcessEnv;
  /** Bus on which an unexpected exit is announced. */
  bus: Bus;
  onExit?: (learnerId: string, code: number | null, signal: string | null) => void;
  /** Lines the learners print on stderr (default: passed through to this process's stderr). */
  onStderr?: (learnerId: string, line: string) => void;
  readyTimeoutMs?: number;
}

interface Child {
  id: string;
  proc: ChildProcess;
  clients: number[];
  exited: Promise<void>;
}

export class LearnerPool {
  private readonly children: Child[] = [];
  private stopping = false;
  /** Learners that exited before stop() (id, code, signal). */
  readonly crashed: Array<{ learnerId: string; code: number | null; signal: string | null }> = [];

  constructor(private readonly o: LearnerPoolOptions) {
    if (o.learners) {
      if (o.learners.length === 0)
        throw new WhaleError('ERR_INVALID_OPTION', 'learners: at least one learner', { field: 'learners' });
      return;
    }
    if (!(Number.isInteger(o.processes) && o.processes >= 1 && o.processes <= o.totalClients)) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `processes: must be an integer in [1, ${o.totalClients}], got ${o.processes}`,
        { field: 'processes' },
      );
    }
  }

  /** Starts every learner and waits until each has registered its clients. */
  async start(): Promise<void> {
    const command = this.o.command;
    const ready: Promise<void>[] = [];
    const plan =
      this.o.learners?.map((l) => ({ id: l.id, clients: [] as number[], args: [...l.args] })) ??
      Array.from({ length: this.o.processes }, (_, k) => {
        const clients = Array.from({ length: this.o.totalClients }, (_, i) => i).filter(
          (i) => i % this.o.processes === k,
        );
        return {
          id: `${this.o.federationId}-learner-${k}`,
          clients,
          args: ['--learner-id', `${this.o.federationId}-learner-${k}`, '--clients', clients.join(',')],
        };
      });
    for (const { id, clients, args } of plan) {
      const proc = spawn(
        command[0]!,
        [...command.slice(1), ...this.o.args, ...args, '--parent-pid', String(process.pid)],
        {
          ...(this.o.env ? { env: this.o.env } : {}),
          // stdin: a pipe never written to; the learner sees it close when this process is gone (parent-death detection).
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      proc.stdin!.on('error', () => undefined);
      const exited = new Promise<void>((resolve) =>
        proc.once('exit', (code, signal) => {
          this.exited(id, code, signal);
          resolve();
        }),
      );
      createInterface({ input: proc.stderr! }).on('line', (line) =>
        this.o.onStderr ? this.o.onStderr(id, line) : process.stderr.write(`[${id}] ${line}\n`),
      );
      const out = createInterface({ input: proc.stdout! });
      ready.push(
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new WhaleError(
                  'ERR_TIMEOUT',
                  `learner ${id} did not start within ${this.o.readyTimeoutMs ?? 120_000} ms`,
                ),
              ),
            this.o.readyTimeoutMs ?? 120_000,
          );
          out.on('line', (line) => {
            if (line.startsWith('READY ')) {
              clearTimeout(timer);
              resolve();
            }
          });
          void exited.then(() => {
            clearTimeout(timer);
            reject(
              new WhaleError(
                'ERR_EXECUTION_FAILED',
                `learner ${id} exited before it was ready (code ${proc.exitCode})`,
              ),
            );
          });
        }),
      );
      this.children.push({ id, proc, clients, exited });
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  get learnerIds(): string[] {
    return this.children.map((c) => c.id);
  }

  /** Kills one learner at once (SIGKILL: no goodbye), as a crash would. */
  kill(learnerId: string): void {
    this.children.find((c) => c.id === learnerId)?.proc.kill('SIGKILL');
  }

  /** Asks every learner to leave (SIGTERM), then kills what is left after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    const timer = setTimeout(
      () => this.children.forEach((c) => c.proc.exitCode === null && c.proc.kill('SIGKILL')),
      graceMs,
    );
    await Promise.all(this.children.map((c) => c.exited));
    clearTimeout(timer);
  }

  private exited(learnerId: string, code: number | null, signal: string | null): void {
    this.o.onExit?.(learnerId, code, signal);
    if (this.stopping || code === 0) return;
    this.crashed.push({ learnerId, code, signal });
    const payload = {
      federationId: this.o.federationId,
      learnerId,
      reason: `process exited (code ${code}, signal ${signal})`,
    };
    void this.o.bus
      .publish(
        FEDERATION_TOPICS.clients,
        createEnvelope({ type: MESSAGE.left, source: 'federation-learner-pool', payload }),
        { key: this.o.federationId },
      )
      .catch(() => undefined);
  }
}
