/**
 * Files in one directory as a data source: a query `{ path: 'client-3/train.npy' }` answers that file's bytes;
 * a path naming a directory answers its listing, JSON `{ "files": [names] }` (content type DIRECTORY_LISTING).
 * Paths stay inside the directory (no absolute paths, no `..`, no symbolic link out of it).
 */
import { realpathSync } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, resolve, sep } from 'node:path';

import { WhaleError } from '../../common/errors.js';
import { isPlainObject } from '../../common/validate.js';
import type { DataFetchOptions, DataReply, DataSource } from './types.js';

const TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.jsonl': 'application/x-ndjson',
  '.ndjson': 'application/x-ndjson',
  '.json': 'application/json',
  '.npy': 'application/x-npy',
  '.idx': 'application/x-idx',
};

/** The content type of a directory's listing: JSON `{ files: string[] }`, the entries that are files, sorted. */
export const DIRECTORY_LISTING = 'application/vnd.whale.directory+json';

export interface FilesDataSourceOptions {
  dir: string;
  /** Largest file answered (default 256 MiB). */
  maxBytes?: number;
}

export class FilesDataSource implements DataSource {
  readonly type = 'files';
  private readonly dir: string;
  private readonly maxBytes: number;

  constructor(o: FilesDataSourceOptions) {
    if (typeof o?.dir !== 'string' || o.dir === '')
      throw new WhaleError('ERR_INVALID_OPTION', 'options.dir: a directory is required', { field: 'options.dir' });
    try {
      this.dir = realpathSync(o.dir);
    } catch (err) {
      throw new WhaleError('ERR_INVALID_OPTION', `options.dir: cannot open ${o.dir}: ${(err as Error).message}`, {
        field: 'options.dir',
      });
    }
    this.maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
  }

  async sizeOf(query: unknown): Promise<number | undefined> {
    return (await stat(await this.resolve(query))).size;
  }

  async fetch(query: unknown, o: DataFetchOptions): Promise<DataReply> {
    const path = await this.resolve(query);
    const info = await stat(path);
    if (info.isDirectory()) {
      const files = (await readdir(path, { withFileTypes: true }))
        .filter((e) => e.isFile() || e.isSymbolicLink())
        .map((e) => e.name)
        .sort();
      return { bytes: new TextEncoder().encode(JSON.stringify({ files })), contentType: DIRECTORY_LISTING };
    }
    const size = info.size;
    if (size > this.maxBytes)
      throw new WhaleError('ERR_INVALID_ARG', `query.path: ${size} bytes, more than this source's ${this.maxBytes}`, {
        field: 'query.path',
      });
    const bytes = new Uint8Array(await readFile(path, { signal: o.signal }));
    return { bytes, contentType: TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream' };
  }

  private async resolve(query: unknown): Promise<string> {
    const rel = isPlainObject(query) ? query.path : undefined;
    if (typeof rel !== 'string' || rel === '' || isAbsolute(rel) || rel.split(/[\\/]/).includes('..'))
      throw new WhaleError('ERR_INVALID_ARG', 'query.path: a relative path inside the source directory is required', {
        field: 'query.path',
      });
    let real: string;
    try {
      real = await realpath(resolve(this.dir, rel));
    } catch {
      throw new WhaleError('ERR_NOT_FOUND', `query.path: no file '${rel}' in this source`, { field: 'query.path' });
    }
    if (!real.startsWith(this.dir + sep))
      throw new WhaleError('ERR_INVALID_ARG', `query.path: '${rel}' leads outside the source directory`, {
        field: 'query.path',
      });
    return real;
  }
}
