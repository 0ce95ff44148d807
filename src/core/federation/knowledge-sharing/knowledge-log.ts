/**
 * The on-disk store of record: one append-only log file of checksummed
 * records (record-codec.ts). An append resolves only after its bytes are
 * written and fdatasync'ed, with concurrent appends sharing one write and one
 * sync, so a kill -9 loses no acknowledged item. A failed write is cut back
 * off the file. Compaction writes the live records to a temp file, syncs it
 * and renames it over the log (atomic). At open, an unfinished last record
 * (never acknowledged) is cut off; damaged records are skipped and reported,
 * the file is kept aside as knowledge.log.damaged-<time> and a clean log is
 * written from what could be read.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import { WhaleError } from '../../../common/errors.js';
import { encodeRecord, parseRecord, RECORD_MAGIC, type StoredRecord } from './record-codec.js';
import type { DamagedRecord } from './types.js';

const FILE = 'knowledge.log';
const HEADER = Buffer.from('SWKL\x01\x00\x00\x00', 'latin1');

interface Pending {
  buf: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface LogReplay {
  records: StoredRecord[];
  damaged: DamagedRecord[];
  tornTailBytes: number;
}

export class KnowledgeLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private fh: FileHandle,
    private bytes: number,
  ) {}

  get path(): string {
    return join(this.dir, FILE);
  }

  /** Bytes in the log now (for the compaction rule). */
  get size(): number {
    return this.bytes;
  }

  static async open(dir: string): Promise<{ log: KnowledgeLog; replay: LogReplay }> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new WhaleError('ERR_INVALID_OPTION', `options.dir: cannot create ${dir}: ${(err as Error).message}`, {
        field: 'options.dir',
        cause: err,
      });
    }
    const path = join(dir, FILE);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new WhaleError('ERR_INVALID_OPTION', `options.dir: cannot read ${path}: ${(err as Error).message}`, {
          field: 'options.dir',
          cause: err,
        });
      }
      buf = Buffer.alloc(0);
    }
    const replay = scan(buf);
    const needsRewrite = replay.damaged.length > 0 || buf.length < HEADER.length;
    if (needsRewrite && buf.length > 0) await rename(path, `${path}.damaged-${Date.now()}`);
    if (needsRewrite) await writeAtomically(dir, [HEADER, ...replay.records.map(encodeRecord)]);
    const fh = await open(path, constants.O_RDWR);
    const size = (await fh.stat()).size;
    const cleanEnd = needsRewrite ? size : buf.length - replay.tornTailBytes;
    if (cleanEnd < size) await fh.truncate(cleanEnd);
    return { log: new KnowledgeLog(dir, fh, cleanEnd), replay };
  }

  /** Resolves once the records are on disk (fdatasync). */
  append(records: StoredRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new WhaleError('ERR_INVALID_STATE', 'the knowledge log is closed'));
    const buf = Buffer.concat(records.map(encodeRecord));
    return new Promise((resolve, reject) => {
      this.queue.push({ buf, resolve, reject });
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
    });
  }

  /** Replaces the log with exactly these records (atomic rename). */
  async compact(live: StoredRecord[]): Promise<void> {
    await this.drain();
    const parts = [HEADER, ...live.map(encodeRecord)];
    await writeAtomically(this.dir, parts);
    await this.fh.close();
    this.fh = await open(this.path, constants.O_RDWR);
    this.bytes = (await stat(this.path)).size;
  }

  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    await this.fh.close();
  }

  private async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const buf = Buffer.concat(batch.map((p) => p.buf));
      try {
        await this.fh.write(buf, 0, buf.length, this.bytes);
        await this.fh.datasync();
        this.bytes += buf.length;
        for (const p of batch) p.resolve();
      } catch (err) {
        // Nothing of this batch was acknowledged: cut it back off so the log stays clean.
        await this.fh.truncate(this.bytes).catch(() => undefined);
        const e = new WhaleError('ERR_INVALID_STATE', `knowledge log write failed: ${(err as Error).message}`, {
          cause: err,
          retriable: true,
        });
        for (const p of batch) p.reject(e);
      }
    }
  }
}

async function writeAtomically(dir: string, parts: Buffer[]): Promise<void> {
  const tmp = join(dir, `${FILE}.tmp-${process.pid}`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    for (const p of parts) await fh.write(p);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, FILE));
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Reads every record it can; resynchronises on the next magic after damage. */
function scan(buf: Buffer): LogReplay {
  const out: LogReplay = { records: [], damaged: [], tornTailBytes: 0 };
  if (buf.length === 0) return out;
  let at = HEADER.length;
  if (buf.length < HEADER.length || !buf.subarray(0, HEADER.length).equals(HEADER)) {
    out.damaged.push({
      source: 'disk',
      where: 'offset 0',
      code: 'ERR_BAD_MAGIC',
      reason: 'not a knowledge log header',
    });
    at = 0;
  }
  while (at < buf.length) {
    const r = parseRecord(buf, at);
    if (r.ok) {
      out.records.push(r.record);
      at += r.size;
      continue;
    }
    const next = buf.indexOf(RECORD_MAGIC, at + 1);
    if (r.code === 'ERR_TRUNCATED' && next < 0) {
      out.tornTailBytes = buf.length - at; // an append cut short by a crash: never acknowledged
      break;
    }
    out.damaged.push({ source: 'disk', where: `offset ${at}`, code: r.code, reason: r.reason });
    if (next < 0) break;
    at = next;
  }
  return out;
}
