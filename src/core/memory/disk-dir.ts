/**
 * The disk tier's directory and key. The directory is private to the user
 * (0700, created so or tightened when it is ours), and a symlink or a
 * directory owned by someone else is refused: another local user must not
 * read the cache or redirect its writes. Entries are authenticated with a
 * 32-byte key kept 0600 in the directory (or given in the options).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, lstat, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { WhaleError } from '../../common/errors.js';

export const KEY_FILE = 'hmac.key';
const KEY_BYTES = 32;
const FIELD = 'options.diskDir';

/** Where the cache directory comes from (the server passes WHALE_CACHE_DIR and XDG_CACHE_HOME, read by common/env.ts). */
export interface CacheDirSource {
  cacheDir?: string | undefined;
  xdgCacheHome?: string | undefined;
}

/** cacheDir, else <xdgCacheHome>/smart-whale (absolute only), else ~/.cache/smart-whale, else <tmp>/smart-whale-<uid>. */
export function defaultCacheDir(o: CacheDirSource = {}): string {
  if (o.cacheDir) return o.cacheDir;
  if (o.xdgCacheHome && isAbsolute(o.xdgCacheHome)) return join(o.xdgCacheHome, 'smart-whale');
  let home = '';
  try {
    home = homedir();
  } catch {
    // no home directory (e.g. a uid without a passwd entry)
  }
  return home ? join(home, '.cache', 'smart-whale') : join(tmpdir(), `smart-whale-${process.getuid?.() ?? 'user'}`);
}

function refuse(dir: string, why: string, cause?: unknown): WhaleError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new WhaleError('ERR_INVALID_OPTION', `${FIELD}: cache directory ${dir} ${why}${code ? ` (${code})` : ''}`, {
    field: FIELD,
    // A missing or blocked path can be fixed while we run; ownership and symlinks are deliberate refusals.
    retriable: cause !== undefined || why === 'is not a directory',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Creates dir 0700 (parents too) or checks an existing one; throws a WhaleError for anything unsafe or unusable. */
export async function openPrivateDir(dir: string): Promise<void> {
  const path = resolve(dir);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw refuse(dir, 'cannot be created', err);
  }
  const st = await lstat(path).catch((err: unknown) => {
    throw refuse(dir, 'cannot be read', err);
  });
  if (st.isSymbolicLink()) throw refuse(dir, 'is a symbolic link; refusing to follow it');
  if (!st.isDirectory()) throw refuse(dir, 'is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw refuse(dir, `is owned by uid ${st.uid}, not by this process's uid ${uid}`);
  if ((st.mode & 0o077) !== 0)
    await chmod(path, 0o700).catch((err: unknown) => {
      throw refuse(dir, 'cannot be made private (chmod 0700)', err);
    });
}

/** Reads the directory's key, creating it on first use (atomically: two processes end up with the same key). */
export async function loadOrCreateKey(dir: string): Promise<Buffer> {
  const path = join(dir, KEY_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await readKey(dir, path);
    if (existing) return existing;
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
      await link(tmp, path); // fails with EEXIST if another process won the race
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw refuse(dir, 'cannot hold the cache key', err);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  throw refuse(dir, 'has a key file that keeps changing');
}

/** The key, or undefined when there is none (a damaged key file is removed: entries made with it become misses). */
async function readKey(dir: string, path: string): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw refuse(dir, `has an unreadable key file ${KEY_FILE}`, err);
  }
  try {
    const st = await fh.stat();
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw refuse(dir, `has a key file owned by uid ${st.uid}`);
    if ((st.mode & 0o077) !== 0) await fh.chmod(0o600);
    const key = await fh.readFile();
    if (st.isFile() && key.length === KEY_BYTES) return key;
  } finally {
    await fh.close();
  }
  await rm(path, { force: true });
  return undefined;
}
