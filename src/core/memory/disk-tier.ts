/**
 * L3: one file per key in a directory, written atomically (temp file +
 * rename), with a byte budget enforced by evicting the least recently used
 * files. Each file holds its key and expiry, so a hash collision or a stale
 * file is detected on read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { WhaleError } from '../base/errors.js';

const MAGIC = Buffer.from('SWC1');
const SUFFIX = '.swc';

export interface DiskTierStats {
  files: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
}

interface FileEntry {
  size: number;
  usedAt: number;
}

export type DiskRead = { status: 'hit'; data: Buffer } | { status: 'miss' } | { status: 'corrupt'; reason: string };

export class DiskTier {
  private readonly index = new Map<string, FileEntry>(); // file name -> size, LRU order
  private bytes = 0;
  private evictions = 0;
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates the directory and indexes what an earlier process left there. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const names = await readdir(this.dir);
      const found: Array<[string, FileEntry]> = [];
      for (const name of names) {
        const path = join(this.dir, name);
        if (name.includes('.tmp-')) {
          await rm(path, { force: true }); // an interrupted write
          continue;
        }
        if (!name.endsWith(SUFFIX)) continue;
        const st = await stat(path).catch(() => undefined);
        if (st?.isFile()) found.push([name, { size: st.size, usedAt: st.mtimeMs }]);
      }
      found.sort((a, b) => a[1].usedAt - b[1].usedAt);
      for (const [name, e] of found) {
        this.index.set(name, e);
        this.bytes += e.size;
      }
      await this.evict();
    })();
    return this.ready;
  }

  async get(key: string): Promise<DiskRead> {
    await this.init();
    const name = fileName(key);
    const entry = this.index.get(name);
    if (!entry) return { status: 'miss' };
    let file: Buffer;
    try {
      file = await readFile(join(this.dir, name));
    } catch {
      this.forget(name);
      return { status: 'miss' };
    }
    const parsed = parse(file);
    if (typeof parsed === 'string') {
      await this.remove(name);
      return { status: 'corrupt', reason: parsed };
    }
    if (parsed.key !== key) return { status: 'miss' }; // a different key with the same hash
    if (parsed.expiresAt !== 0 && parsed.expiresAt <= this.now()) {
      await this.remove(name);
      return { status: 'miss' };
    }
    this.index.delete(name);
    this.index.set(name, { size: entry.size, usedAt: this.now() });
    return { status: 'hit', data: parsed.data };
  }

  async set(key: string, data: Uint8Array, ttlMs?: number): Promise<void> {
    await this.init();
    const name = fileName(key);
    const keyBytes = Buffer.from(key, 'utf8');
    const header = Buffer.alloc(4 + 8 + 4);
    MAGIC.copy(header, 0);
    header.writeBigUInt64LE(BigInt(ttlMs === undefined ? 0 : Math.ceil(this.now() + ttlMs)), 4);
    header.writeUInt32LE(keyBytes.length, 12);
    const file = Buffer.concat([header, keyBytes, data]);
    if (file.length > this.maxBytes) {
      throw new WhaleError('ERR_INVALID_ARG', `value: ${file.length} bytes exceed the disk tier budget of ${this.maxBytes}`, { field: 'value' });
    }
    const tmp = join(this.dir, `${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, file);
    await rename(tmp, join(this.dir, name));
    this.forget(name);
    this.index.set(name, { size: file.length, usedAt: this.now() });
    this.bytes += file.length;
    await this.evict();
  }

  async delete(key: string): Promise<void> {
    await this.init();
    await this.remove(fileName(key));
  }

  stats(): DiskTierStats {
    return { files: this.index.size, bytes: this.bytes, maxBytes: this.maxBytes, evictions: this.evictions };
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

function fileName(key: string): string {
  return createHash('sha256').update(key).digest('hex') + SUFFIX;
}

function parse(file: Buffer): { key: string; expiresAt: number; data: Buffer } | string {
  if (file.length < 16 || !file.subarray(0, 4).equals(MAGIC)) return 'bad header';
  const keyLen = file.readUInt32LE(12);
  if (16 + keyLen > file.length) return 'truncated key';
  return {
    key: file.subarray(16, 16 + keyLen).toString('utf8'),
    expiresAt: Number(file.readBigUInt64LE(4)),
    data: file.subarray(16 + keyLen),
  };
}
