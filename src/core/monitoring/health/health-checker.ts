/**
 * HealthChecker: liveness and readiness of each part, each check with the
 * reason it fails. Checks run concurrently, each bounded by its timeout (a
 * check that hangs fails with "timed out", it does not hang the probe); calls
 * that arrive while a run is in flight share it, and a report younger than
 * minIntervalMs is reused so a probe storm cannot multiply the work.
 */
import { WhaleError } from '../../../common/errors.js';

export type CheckKind = 'liveness' | 'readiness';

export interface CheckResult {
  ok: boolean;
  /** Why it fails (or a note when it passes in a degraded way). */
  reason?: string;
  detail?: Record<string, unknown>;
}

export interface HealthCheck {
  name: string;
  kind: CheckKind;
  run(): CheckResult | Promise<CheckResult>;
  /** Default: the checker's timeoutMs. */
  timeoutMs?: number;
}

export interface CheckReport extends CheckResult {
  name: string;
  kind: CheckKind;
  durationMs: number;
}

export interface HealthReport {
  live: boolean;
  ready: boolean;
  checks: CheckReport[];
  timestamp: number;
}

export interface HealthCheckerOptions {
  timeoutMs?: number;
  minIntervalMs?: number;
}

export class HealthChecker {
  private readonly checks = new Map<string, HealthCheck>();
  private readonly timeoutMs: number;
  private readonly minIntervalMs: number;
  private running: Promise<HealthReport> | undefined;
  private lastReport: HealthReport | undefined;

  constructor(o: HealthCheckerOptions = {}) {
    this.timeoutMs = positive(o.timeoutMs ?? 2_000, 'options.timeoutMs');
    this.minIntervalMs = o.minIntervalMs ?? 250;
    if (!(this.minIntervalMs >= 0))
      throw new WhaleError('ERR_INVALID_OPTION', 'options.minIntervalMs: must be a number >= 0', {
        field: 'options.minIntervalMs',
      });
  }

  addCheck(check: HealthCheck): this {
    if (!check || typeof check.name !== 'string' || check.name === '')
      throw new WhaleError('ERR_INVALID_ARG', 'check.name: must be a non-empty string', { field: 'check.name' });
    if (check.kind !== 'liveness' && check.kind !== 'readiness')
      throw new WhaleError('ERR_INVALID_ARG', "check.kind: must be 'liveness' or 'readiness'", { field: 'check.kind' });
    if (typeof check.run !== 'function')
      throw new WhaleError('ERR_INVALID_ARG', 'check.run: must be a function', { field: 'check.run' });
    if (check.timeoutMs !== undefined) positive(check.timeoutMs, 'check.timeoutMs');
    if (this.checks.has(check.name))
      throw new WhaleError('ERR_CONFLICT', `check.name: a health check named '${check.name}' exists already`, {
        field: 'check.name',
      });
    this.checks.set(check.name, check);
    return this;
  }

  removeCheck(name: string): boolean {
    return this.checks.delete(name);
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  /** The last report, without running anything. */
  last(): HealthReport | undefined {
    return this.lastReport;
  }

  /** Runs every check (or reuses a run in flight or fresher than minIntervalMs). */
  check(): Promise<HealthReport> {
    if (this.lastReport && Date.now() - this.lastReport.timestamp < this.minIntervalMs)
      return Promise.resolve(this.lastReport);
    this.running ??= this.runAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runAll(): Promise<HealthReport> {
    const checks = await Promise.all([...this.checks.values()].map((c) => this.runOne(c)));
    const live = checks.every((c) => c.kind !== 'liveness' || c.ok);
    const ready = live && checks.every((c) => c.kind !== 'readiness' || c.ok);
    this.lastReport = { live, ready, checks, timestamp: Date.now() };
    return this.lastReport;
  }

  private async runOne(c: HealthCheck): Promise<CheckReport> {
    const started = performance.now();
    const ms = c.timeoutMs ?? this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: `timed out after ${ms} ms` }), ms);
      timer.unref();
    });
    let result: CheckResult;
    try {
      result = await Promise.race([Promise.resolve().then(() => c.run()), timeout]);
      if (!result || typeof result.ok !== 'boolean')
        result = { ok: false, reason: 'the check returned no { ok } result' };
    } catch (err) {
      result = { ok: false, reason: (err as Error)?.message ?? String(err) };
    } finally {
      clearTimeout(timer);
    }
    return { name: c.name, kind: c.kind, ...result, durationMs: performance.now() - started };
  }
}

function positive(v: number, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be a finite number > 0`, { field });
  return v;
}
