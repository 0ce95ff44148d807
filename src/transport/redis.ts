/**
 * The one place that opens Redis connections. Each user names a profile; the
 * table below states, per profile, how the connection behaves while Redis is
 * slow or down (timeouts, retries, offline queue, reconnect backoff). Every
 * connection gets an 'error' listener, so a refused or dropped connection is
 * never an unhandled 'error' event: failures surface as rejected commands
 * (or through the caller's onError). An outage is logged once per Redis (not
 * per connection or reconnect attempt): 'redis unreachable' when the first
 * connection to it fails, 'redis reachable again' when one is ready again,
 * at most one 'unreachable' line per 30 s while it flaps.
 */
import { Redis, type RedisOptions } from 'ioredis';

import { createLogger, type Logger } from '../common/logger.js';

export type RedisProfileName = 'cache' | 'quota' | 'state' | 'health' | 'knowledge' | 'kv';

export interface RedisProfile {
  /** Who uses it and why it is set up so. */
  use: string;
  /** Connect only on the first command / explicit connect(). */
  lazyConnect: boolean;
  /** Queue commands while disconnected (false: they fail at once). */
  enableOfflineQueue: boolean;
  /** Retries of a command across reconnects before it fails. */
  maxRetriesPerRequest: number;
  /** Per-command limit in ms; undefined = none. */
  commandTimeoutMs: number | undefined;
  connectTimeoutMs: number;
  /** Delay in ms before reconnect attempt `times` (1, 2, ...). */
  retryDelayMs: (times: number) => number;
}

/** ioredis's own reconnect delay: 50 ms more per attempt, at most 2 s. */
const linearBackoff = (times: number): number => Math.min(times * 50, 2000);
/** Doubling from 100 ms, at most 2 s. */
const exponentialBackoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

// prettier-ignore
export const REDIS_PROFILES: Readonly<Record<RedisProfileName, Readonly<RedisProfile>>> = {
  //          lazy   offline queue  retries  command timeout  connect timeout  reconnect delay
  cache:     { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeoutMs: 250,       connectTimeoutMs: 1_000,  retryDelayMs: exponentialBackoff, use: "the cache's L2: fail fast so the cache falls back to L1/L3" },
  quota:     { lazyConnect: false, enableOfflineQueue: true,  maxRetriesPerRequest: 2, commandTimeoutMs: undefined, connectTimeoutMs: 10_000, retryDelayMs: linearBackoff,      use: 'shared quota buckets and slots: ride out a short reconnect' },
  state:     { lazyConnect: false, enableOfflineQueue: true,  maxRetriesPerRequest: 2, commandTimeoutMs: 2_000,     connectTimeoutMs: 10_000, retryDelayMs: linearBackoff,      use: "the services' persistent state" },
  health:    { lazyConnect: true,  enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeoutMs: undefined, connectTimeoutMs: 1_000,  retryDelayMs: () => 500,          use: 'the readiness PING: answer within the check timeout, never queue' },
  knowledge: { lazyConnect: true,  enableOfflineQueue: true,  maxRetriesPerRequest: 1, commandTimeoutMs: 2_000,     connectTimeoutMs: 2_000,  retryDelayMs: exponentialBackoff, use: 'shared knowledge items (connect() reports an unreachable Redis)' },
  kv:        { lazyConnect: false, enableOfflineQueue: true,  maxRetriesPerRequest: 3, commandTimeoutMs: undefined, connectTimeoutMs: 2_000,  retryDelayMs: linearBackoff,      use: "federated rounds' key-value store (models, checkpoints)" },
};

export interface RedisConnectOptions {
  /** Overrides the profile's per-command limit. */
  commandTimeoutMs?: number;
  /** Called for each connection error (default: ignored; commands report their own failures). */
  onError?: (err: Error) => void;
  /** Where the outage lines go (default: a 'redis' logger). */
  logger?: Logger;
}

/** At most one 'unreachable' line per Redis this often. */
const OUTAGE_LOG_MS = 30_000;

/** Per Redis URL: down or not, and when its outage was last logged (shared by every connection to it). */
const outages = new Map<string, { down: boolean; loggedAt: number }>();

/** `url` without its password (`redis://user:***@host:port`). */
export function redactRedisUrl(url: string): string {
  return url.replace(
    /\/\/([^@/]*)@/,
    (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`,
  );
}

/** Registers the 'ready' listener and returns what the connection's one 'error' listener calls. */
function trackOutage(url: string, client: Redis, logger: Logger | undefined): (err: Error) => void {
  const state = () => {
    let s = outages.get(url);
    if (!s) outages.set(url, (s = { down: false, loggedAt: -Infinity }));
    return s;
  };
  client.on('ready', () => {
    const s = state();
    if (!s.down) return;
    s.down = false;
    (logger ?? createLogger('redis')).info('redis reachable again', { redis: redactRedisUrl(url) });
  });
  return (err: Error) => {
    const s = state();
    if (s.down) return;
    s.down = true;
    if (Date.now() - s.loggedAt < OUTAGE_LOG_MS) return;
    s.loggedAt = Date.now();
    (logger ?? createLogger('redis')).warn('redis unreachable; its commands fail or wait until it is back', {
      redis: redactRedisUrl(url),
      reason: err.message,
    });
  };
}

/** The ioredis options of a profile. */
export function redisOptions(profile: RedisProfileName, o: RedisConnectOptions = {}): RedisOptions {
  const p = REDIS_PROFILES[profile];
  const commandTimeout = o.commandTimeoutMs ?? p.commandTimeoutMs;
  return {
    lazyConnect: p.lazyConnect,
    enableOfflineQueue: p.enableOfflineQueue,
    maxRetriesPerRequest: p.maxRetriesPerRequest,
    ...(commandTimeout === undefined ? {} : { commandTimeout }),
    connectTimeout: p.connectTimeoutMs,
    retryStrategy: p.retryDelayMs,
  };
}

/** A connection to `url` set up as `profile` says, with an 'error' listener attached. */
export function connectRedis(url: string, profile: RedisProfileName, o: RedisConnectOptions = {}): Redis {
  const client = new Redis(url, redisOptions(profile, o));
  const onError = o.onError;
  const outage = trackOutage(url, client, o.logger);
  // The one 'error' listener: the outage is logged once per Redis, the caller hears every error.
  client.on('error', (err: Error) => {
    outage(err);
    onError?.(err);
  });
  return client;
}

export type { Redis } from 'ioredis';
