/**
 * The one place that opens Redis connections. Each user names a profile; the
 * table below states, per profile, how the connection behaves while Redis is
 * slow or down (timeouts, retries, offline queue, reconnect backoff). Every
 * connection gets an 'error' listener, so a refused or dropped connection is
 * never an unhandled 'error' event: failures surface as rejected commands
 * (or through the caller's onError).
 */
import { Redis, type RedisOptions } from 'ioredis';

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
  client.on('error', onError ? (err: Error) => onError(err) : () => undefined);
  return client;
}

export type { Redis } from 'ioredis';
