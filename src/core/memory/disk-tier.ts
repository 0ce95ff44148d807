/**
 * L3: one file per id in a private directory (disk-dir.ts), written
 * atomically (temp file + rename, the temp file removed if either step
 * fails), authenticated (disk-entry.ts), with a byte budget enforced by
 * evicting the least recently used files. If the directory cannot be opened
 * the tier fails fast with the same typed error and tries again after a
 * backoff (100 ms doubling to 30 s), so it comes back once the folder is fixed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { isWhaleError, WhaleError } from '../../common/errors.js';
import { loadOrCreateKey, openPrivateDir } from './disk-dir.js';
import { encodeEntry, parseEntry } from './disk-entry.js';

const SUFFIX = '.swc';
/** A temp file older than this belongs to a writer that died (a live write takes milliseconds). */
const STALE_TMP_MS = 60_000;

export interface DiskTierStats {
  files: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
}

export interface DiskFs {
  writeFile: typeof writeFile;
  rename: typeof rename;
}

export interface DiskTierOptions {
  dir: string;
  maxBytes: number;
  /** HMAC key of the entries; default: the directory's key file (created on first use). */
  key?: Uint8Array;
  now?: () => number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** File operations that can fail mid-write (replaced in tests to simulate a full disk). */
  fs?: Partial<DiskFs>;
}

interface FileEntry {
  size: number;
  usedAt: number;
}

export type DiskRead =
  { status: 'hit'; data: Buffer; expiresAt: number } | { status: 'miss' } | { status: 'corrupt'; reason: string };

export class DiskTier {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly now: () => number;
  private readonly fs: DiskFs;
  private readonly index = new Map<string, FileEntry>(); // file name -> size, LRU order
  private bytes = 0;
  private evictions = 0;
  private opened: Promise<Uint8Array> | undefined;
  private failure: { error: unknown; retryAt: number; delayMs: number } | undefined;

  constructor(private readonly o: DiskTierOptions) {
    this.dir = o.dir;
    this.maxBytes = o.maxBytes;
    this.now = o.now ?? Date.now;
    this.fs = { writeFile, rename, ...o.fs };
  }

  /** Opens the directory now, even during a backoff; throws the typed reason it is unusable. */
  async init(): Promise<void> {
    await this.open(true);
  }

  async get(id: string): Promise<DiskRead> {
    const key = await this.open();
    const name = fileName(id);
    const entry = this.index.get(name);
    if (!entry) return { status: 'miss' };
    let file: Buffer;
    try {
      file = await readFile(join(this.dir, name), { flag: constants.O_RDONLY | constants.O_NOFOLLOW });
    } catch {
      this.forget(name);
      return { status: 'miss' };
    }
    const parsed = parseEntry(key, file);
    if (typeof parsed === 'string') {
      await this.remove(name);
      return { status: 'corrupt', reason: parsed };
    }
    if (parsed.id !== id) return { status: 'miss' }; // a different id with the same hash
    if (parsed.expiresAt <= this.now()) {
      await this.remove(name);
      return { status: 'miss' };
    }
    this.index.delete(name);
    this.index.set(name, { size: entry.size, usedAt: this.now() });
    return { status: 'hit', data: parsed.data, expiresAt: parsed.expiresAt };
  }

  /** expiresAt: ms since epoch (default never). */
  async set(id: string, data: Uint8Array, expiresAt = Infinity): Promise<void> {
    const key = await this.open();
    const name = fileName(id);
    const file = encodeEntry(key, { id, expiresAt, data });
    if (file.length > this.maxBytes) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `value: ${file.length} bytes exceed the disk tier budget of ${this.maxBytes}`,
        { field: 'value' },
      );
    }
    const tmp = join(this.dir, `${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await this.fs.writeFile(tmp, file, { mode: 0o600, flag: 'wx' });
      await this.fs.rename(tmp, join(this.dir, name));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.opened = undefined; // the directory went away: open it again
      throw err;
    }
    this.forget(name);
    this.index.set(name, { size: file.length, usedAt: this.now() });
    this.bytes += file.length;
    await this.evict();
  }

  async delete(id: string): Promise<void> {
    await this.open();
    await this.remove(fileName(id));
  }

  stats(): DiskTierStats {
    return { files: this.index.size, bytes: this.bytes, maxBytes: this.maxBytes, evictions: this.evictions };
  }

  /** The entries' key once the directory is usable; during a backoff, the last failure at once. */
  private open(force = false): Promise<Uint8Array> {
    if (this.opened) return this.opened;
    const f = this.failure;
    if (f && !force && this.now() < f.retryAt) return Promise.reject(f.error);
    const attempt = this.openNow();
    this.opened = attempt;
    attempt.then(
      () => (this.failure = undefined),
      (error: unknown) => {
        if (this.opened === attempt) this.opened = undefined;
        const delayMs = f ? Math.min(f.delayMs * 2, this.o.retryMaxMs ?? 30_000) : (this.o.retryMinMs ?? 100);
        this.failure = { error, retryAt: this.now() + delayMs, delayMs };
      },
    );
    return attempt;
  }

  /** Checks the directory, loads the key and indexes what an earlier process left there. */
  private async openNow(): Promise<Uint8Array> {
    await openPrivateDir(this.dir);
    try {
      const key = this.o.key ?? (await loadOrCreateKey(this.dir));
      const found: Array<[string, FileEntry]> = [];
      for (const name of await readdir(this.dir)) {
        const path = join(this.dir, name);
        const st = await stat(path).catch(() => undefined);
        if (!st?.isFile()) continue;
        if (name.includes('.tmp-')) {
          if (this.now() - st.mtimeMs > STALE_TMP_MS) await rm(path, { force: true });
        } else if (name.endsWith(SUFFIX)) {
          found.push([name, { size: st.size, usedAt: st.mtimeMs }]);
        }
      }
      found.sort((a, b) => a[1].usedAt - b[1].usedAt);
      this.index.clear();
      this.bytes = 0;
      for (const [name, e] of found) {
        this.index.set(name, e);
        this.bytes += e.size;
      }
      await this.evict();
      return key;
    } catch (err) {
      if (isWhaleError(err)) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `options.diskDir: cache directory ${this.dir} cannot be read${code ? ` (${code})` : ''}`,
        {
          field: 'options.diskDir',
          retriable: true,
          cause: err,
        },
      );
    }
  }

  private async evict(): Promise<void> {
    for (const name of this.index.keys()) {
      if (this.bytes <= this.maxBytes) break;
      await this.remove(name);
      this.evictions++;
    }
  }

  private forget(name: string): void {
    const e = this.index.get(name);
    if (!e) return;
    this.index.delete(name);
    this.bytes -= e.size;
  }

  private async remove(name: string): Promise<void> {
    this.forget(name);
    await rm(join(this.dir, name), { force: true });
  }
}

function fileName(id: string): string {
  return createHash('sha256').update(id).digest('hex') + SUFFIX;
}
