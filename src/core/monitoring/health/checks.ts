/** The built-in health checks: models loaded, bus connected, Redis reachable, disk writable, GPU visible, event loop. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Bus } from '../../../transport/bus.js';
import { createEnvelope } from '../../../transport/envelope.js';
import { connectRedis, type Redis } from '../../../transport/redis.js';
import { TOPICS } from '../../../transport/topics.js';
import { engine } from '../../../native/engine.js';
import { redactPaths } from '../../../common/redact.js';
import type { HostedModelStatus } from '../../processing/model-host.js';
import type { HealthCheck } from './health-checker.js';

export function modelsLoadedCheck(
  host: { names(): string[]; status(name: string): HostedModelStatus },
  /** Why a loaded model cannot serve anyway (a quota that admits nothing): it fails the check like a model that is not loaded. */
  cannotServe: (model: string) => string | undefined = () => undefined,
): HealthCheck {
  return {
    name: 'models',
    kind: 'readiness',
    run: () => {
      const all = host.names().map((n) => {
        const s = host.status(n);
        const why = s.state === 'ready' ? cannotServe(n) : undefined;
        return why ? { ...s, state: 'failed' as const, lastError: `loaded but cannot serve: ${why}` } : s;
      });
      if (all.length === 0) return { ok: false, reason: 'no model is hosted' };
      // Optional models that are not loaded are reported, not failed: the node serves without them (and retries).
      // With optional models only, the node is ready once one of them is (ModelHost.allReady()).
      const required = all.filter((s) => !s.optional);
      const bad =
        required.length > 0
          ? required.filter((s) => s.state !== 'ready')
          : all.some((s) => s.state === 'ready')
            ? []
            : all;
      const waiting = all.filter((s) => s.state !== 'ready' && !bad.includes(s));
      const detail = Object.fromEntries(all.map((s) => [s.name, s.optional ? `${s.state} (optional)` : s.state]));
      // lastError comes from ModelHost.status(): filesystem paths are already replaced by <path>.
      const why = (s: HostedModelStatus) =>
        `model '${s.name}'${s.optional ? ' (optional)' : ''} is ${s.state}${s.lastError ? `: ${s.lastError}` : ''}`;
      if (bad.length === 0)
        return { ok: true, detail, ...(waiting.length ? { reason: `${waiting.map(why).join('; ')}; retrying` } : {}) };
      return { ok: false, reason: bad.map(why).join('; '), detail };
    },
  };
}

/** Publishes a heartbeat on whale.metrics: passes when the bus takes it. */
export function busConnectedCheck(bus: () => Bus, source: string): HealthCheck {
  return {
    name: 'bus',
    kind: 'readiness',
    run: async () => {
      const b = bus();
      try {
        await b.publish(
          TOPICS.metrics,
          createEnvelope({
            type: 'Metric',
            source,
            payload: { name: 'whale.health.heartbeat', value: Date.now(), labels: {} },
          }),
          { key: 'whale.health.heartbeat' },
        );
        return { ok: true, detail: { kind: b.kind } };
      } catch (err) {
        return { ok: false, reason: `${b.kind} bus: ${(err as Error).message}` };
      }
    },
  };
}

/** PING on a dedicated connection that fails fast instead of queueing (close() it with the checker). */
export function redisReachableCheck(url: string): HealthCheck & { close(): Promise<void> } {
  let client: Redis | undefined;
  const get = () => (client ??= connectRedis(url, 'health'));
  return {
    name: 'redis',
    kind: 'readiness',
    timeoutMs: 1_500,
    run: async () => {
      const c = get();
      if (c.status === 'wait') await c.connect().catch(() => undefined);
      try {
        await c.ping();
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: `redis at ${redact(url)}: ${(err as Error).message}` };
      }
    },
    close: async () => {
      client?.disconnect();
      client = undefined;
    },
  };
}

/** The cache/metrics directory takes a file; its path stays out of the report (anonymous clients read /healthz). */
export function diskWritableCheck(dir: string): HealthCheck {
  return {
    name: 'disk',
    kind: 'readiness',
    run: async () => {
      const probe = join(dir, `.whale-health-${process.pid}-${Date.now()}`);
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(probe, 'ok');
        await rm(probe, { force: true });
        return { ok: true };
      } catch (err) {
        // Anyone may read /healthz: the reason names the error, not where the directory is (the log has it).
        const code = (err as NodeJS.ErrnoException).code;
        return {
          ok: false,
          reason: `the cache/metrics directory is not writable${code ? ` (${code})` : `: ${redactPaths((err as Error).message)}`}`,
        };
      }
    },
  };
}

/** Fails only when a GPU is required (WHALE_REQUIRE_GPU=1); otherwise passes and says why none is used. */
export function gpuVisibleCheck(required: boolean): HealthCheck {
  return {
    name: 'gpu',
    kind: 'readiness',
    run: () => {
      let gpus: string[] = [],
        why: string | undefined;
      try {
        const r = engine.devices();
        gpus = r.devices.filter((d) => d.kind === 'cuda').map((d) => `${d.id} ${d.name}`);
        why = r.gpuUnavailableReason;
      } catch (err) {
        why = (err as Error).message;
      }
      if (gpus.length > 0) return { ok: true, detail: { gpus } };
      const reason = `no GPU visible${why ? ` (${why})` : ''}`;
      return required
        ? { ok: false, reason }
        : { ok: true, reason: `${reason}; running on the CPU`, detail: { gpus: [] } };
    },
  };
}

/** Liveness: the event loop answered within maxDelayMs (p99 since the last check). */
export function eventLoopCheck(maxDelayMs = 5_000): HealthCheck & { close(): void } {
  const h = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  return {
    name: 'event-loop',
    kind: 'liveness',
    run: () => {
      const p99 = h.percentile(99) / 1e6;
      h.reset();
      return p99 <= maxDelayMs
        ? { ok: true, detail: { p99DelayMs: Math.round(p99) } }
        : { ok: false, reason: `event loop delay p99 ${Math.round(p99)} ms > ${maxDelayMs} ms` };
    },
    close: () => h.disable(),
  };
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
