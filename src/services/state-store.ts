/**
 * Where services keep state that must survive a restart (pending requests,
 * sessions): Redis when configured, memory otherwise. Failures are not
 * hidden: losing state silently would lose requests.
 */

import { WhaleError } from '../common/errors.js';
import { toJsonOrThrow } from '../common/json-safe.js';
import { intOption } from '../common/validate.js';
import { connectRedis, redactRedisUrl, type Redis } from '../transport/redis.js';

export interface StateStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with prefix. */
  keys(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface MemoryStateStoreOptions {
  /** Entries held at most (default 100,000); a write past it fails with ERR_OVERLOADED. */
  maxEntries?: number;
  /** Bytes held at most, keys plus JSON text (default 64 MiB); a write past it fails with ERR_OVERLOADED. */
  maxBytes?: number;
  /** How often expired entries are swept (default 1 s; 0 = only on writes). The timer never holds the event loop. */
  sweepIntervalMs?: number;
}

interface Entry {
  json: string;
  expiresAt: number;
  bytes: number;
}

interface Deadline {
  at: number;
  key: string;
  entry: Entry;
}

/** Expired entries each write removes at most (the timer removes the rest), so a write stays cheap. */
const SWEEP_PER_WRITE = 32;

/**
 * State in memory, bounded in entries and bytes. Expired entries are removed
 * by a sweep on every write (a few at a time, oldest deadline first) and by an
 * unref'd timer, not only when read. When full of live entries, a write fails
 * (retriable) rather than evicting: evicting would silently lose a pending
 * request or a session.
 */
export class MemoryStateStore implements StateStore {
  private readonly map = new Map<string, Entry>();
  /** Min-heap of deadlines; an item is stale once its key was overwritten or deleted. */
  private heap: Deadline[] = [];
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly sweepIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(o: MemoryStateStoreOptions = {}) {
    this.maxEntries = intOption(o.maxEntries, 100_000, 'options.maxEntries', 1);
    this.maxBytes = intOption(o.maxBytes, 64 * 2 ** 20, 'options.maxBytes', 1);
    this.sweepIntervalMs = intOption(o.sweepIntervalMs, 1000, 'options.sweepIntervalMs', 0);
  }

  /** Entries held now (expired ones not yet swept included). */
  get size(): number {
    return this.map.size;
  }

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.remove(key, e);
      return undefined;
    }
    return JSON.parse(e.json) as T;
  }

  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    checkKey(key);
    checkTtl(ttlMs);
    const json = toJson(value);
    const now = Date.now();
    this.sweep(now, SWEEP_PER_WRITE);
    const entry: Entry = {
      json,
      expiresAt: ttlMs === undefined ? Infinity : now + ttlMs,
      bytes: 2 * (key.length + json.length),
    };
    if (entry.bytes > this.maxBytes) {
      throw new WhaleError(
        'ERR_PAYLOAD_TOO_LARGE',
        `value: ${entry.bytes} bytes exceed the store's ${this.maxBytes} (options.maxBytes)`,
        { field: 'value' },
      );
    }
    if (!this.fits(key, entry)) {
      this.sweep(now, Infinity);
      if (!this.fits(key, entry)) {
        const full = this.map.size + 1 > this.maxEntries ? 'options.maxEntries' : 'options.maxBytes';
        throw new WhaleError(
          'ERR_OVERLOADED',
          `state store is full: ${this.map.size} live entries, ${this.bytes} bytes (options.maxEntries ${this.maxEntries}, options.maxBytes ${this.maxBytes})`,
          {
            retriable: true,
            field: full,
          },
        );
      }
    }
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    this.map.set(key, entry);
    this.bytes += entry.bytes;
    if (entry.expiresAt !== Infinity) {
      this.push({ at: entry.expiresAt, key, entry });
      this.startTimer();
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const e = this.map.get(key);
    if (e) this.remove(key, e);
  }

  async keys(prefix: string): Promise<string[]> {
    if (typeof prefix !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'prefix: must be a string', { field: 'prefix' });
    const now = Date.now();
    const out: string[] = [];
    for (const [k, e] of this.map) if (k.startsWith(prefix) && e.expiresAt > now) out.push(k);
    return out;
  }

  /** Stops the sweep timer; the entries stay (a later write starts it again). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether writing `entry` under `key` stays within the bounds. */
  private fits(key: string, entry: Entry): boolean {
    const old = this.map.get(key);
    return (
      this.map.size + (old ? 0 : 1) <= this.maxEntries && this.bytes - (old?.bytes ?? 0) + entry.bytes <= this.maxBytes
    );
  }

  private remove(key: string, e: Entry): void {
    this.map.delete(key);
    this.bytes -= e.bytes;
  }

  /** Removes up to `limit` expired entries, earliest deadline first. */
  private sweep(now: number, limit: number): void {
    let removed = 0;
    while (this.heap.length > 0 && this.heap[0]!.at <= now && removed < limit) {
      const d = this.pop();
      if (this.map.get(d.key) !== d.entry) continue; // overwritten or deleted since
      this.remove(d.key, d.entry);
      removed++;
    }
    // Overwrites leave stale deadlines behind: rebuild before they outnumber the entries.
    if (this.heap.length > 2 * this.map.size + 1024) this.rebuild();
    if (this.heap.length === 0) void this.close();
  }

  private startTimer(): void {
    if (this.timer || this.sweepIntervalMs === 0) return;
    this.timer = setInterval(() => this.sweep(Date.now(), Infinity), this.sweepIntervalMs);
    this.timer.unref();
  }

  private rebuild(): void {
    this.heap = this.heap.filter((d) => this.map.get(d.key) === d.entry);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(d: Deadline): void {
    const h = this.heap;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= d.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = d;
  }

  private pop(): Deadline {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(i: number): void {
    const h = this.heap;
    const d = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= h.length) break;
      if (c + 1 < h.length && h[c + 1]!.at < h[c]!.at) c++;
      if (h[c]!.at >= d.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = d;
  }
}

/** Longest TTL accepted: about 300 years, far past any session, and still exact in a double. */
const MAX_TTL_MS = 1e13;

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0)
    throw new WhaleError('ERR_INVALID_ARG', 'key: must be a non-empty string', { field: 'key' });
}

function checkTtl(ttlMs: unknown): void {
  if (ttlMs === undefined) return;
  if (typeof ttlMs !== 'number' || !(ttlMs > 0 && ttlMs <= MAX_TTL_MS)) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `ttlMs: must be a number of ms in (0, ${MAX_TTL_MS}], got ${String(ttlMs)}`,
      { field: 'ttlMs' },
    );
  }
}

/** JSON of a stored value, or ERR_INVALID_ARG naming the part that would not survive (BigInt, cycle, NaN, Map…). */
function toJson(value: unknown): string {
  if (value === undefined)
    throw new WhaleError('ERR_INVALID_ARG', 'value: undefined cannot be stored (delete the key instead)', {
      field: 'value',
    });
  return toJsonOrThrow(value, 'value', 'ERR_INVALID_ARG');
}

/** A literal for Redis's glob MATCH (a key prefix may contain * ? [ ] \\). */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

export class RedisStateStore implements StateStore {
  private readonly client: Redis;
  private lastError: string | undefined;

  constructor(
    private readonly url: string,
    private readonly prefix = 'whale:state:',
  ) {
    // Commands report failures (as ERR_UNAVAILABLE, below); the factory logs the outage once.
    this.client = connectRedis(url, 'state', { onError: (err) => (this.lastError = err.message) });
  }

  /** A command; a Redis that cannot be reached is one ERR_UNAVAILABLE naming it, not ioredis's retry text. */
  private async run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof WhaleError || (err as Error)?.name === 'ReplyError') throw err;
      const why = this.client.status === 'ready' ? (err as Error).message : (this.lastError ?? (err as Error).message);
      throw new WhaleError('ERR_UNAVAILABLE', `redis: cannot reach ${redactRedisUrl(this.url)} (REDIS_URL): ${why}`, {
        retriable: true,
        cause: err,
      });
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    const v = await this.run(() => this.client.get(this.prefix + key));
    return v === null ? undefined : (JSON.parse(v) as T);
  }

  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    checkKey(key);
    checkTtl(ttlMs);
    const json = toJson(value);
    if (ttlMs === undefined) await this.run(() => this.client.set(this.prefix + key, json));
    else await this.run(() => this.client.set(this.prefix + key, json, 'PX', Math.max(1, Math.ceil(ttlMs))));
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.run(() => this.client.del(this.prefix + key));
  }

  async keys(prefix: string): Promise<string[]> {
    if (typeof prefix !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'prefix: must be a string', { field: 'prefix' });
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.run(() =>
        this.client.scan(cursor, 'MATCH', `${globEscape(this.prefix + prefix)}*`, 'COUNT', 500),
      );
      cursor = next;
      for (const k of batch) out.push(k.slice(this.prefix.length));
    } while (cursor !== '0');
    return out;
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
