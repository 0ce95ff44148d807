// The disk tier (L3): a private per-user directory, authenticated entries, typed errors, recovery, no temp files left.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { writeFile as fsWriteFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { defaultCacheDir } from '../src/core/memory/disk-dir.js';
import { DiskTier } from '../src/core/memory/disk-tier.js';
import { TieredCache } from '../src/core/memory/tiered-cache.js';
import { expectWhaleError, until } from './helpers.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'whale-disk-'));
const mode = (p: string) => statSync(p).mode & 0o777;
const cacheAt = (diskDir: string, extra: Record<string, unknown> = {}) =>
  new TieredCache({ diskDir, logger: silentLogger, redisUrl: '', ...extra });
const entries = (d: string) => readdirSync(d).filter((f) => f.endsWith('.swc'));

describe('default directory', () => {
  const saved = { home: process.env.HOME };
  afterEach(() => {
    for (const [k, v] of [['HOME', saved.home]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('is per user: $XDG_CACHE_HOME/smart-whale, else ~/.cache/smart-whale (never a shared /tmp path)', () => {
    expect(defaultCacheDir({ xdgCacheHome: '/srv/c' })).toBe('/srv/c/smart-whale');
    expect(defaultCacheDir({ xdgCacheHome: 'relative/ignored' })).toBe(join(homedir(), '.cache', 'smart-whale'));
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'smart-whale'));
    expect(defaultCacheDir({ cacheDir: '/data/wc' })).toBe('/data/wc');
    expect(defaultCacheDir({})).not.toBe(join(tmpdir(), 'smart-whale-cache'));
  });

  it('TieredCache without diskDir creates ~/.cache/smart-whale 0700 with 0600 files (WHALE_CACHE_DIR is applied by the server, not by core)', async () => {
    const home = scratch();
    process.env.HOME = home;
    const c = new TieredCache({ logger: silentLogger, redisUrl: '' });
    await c.ready();
    await c.set('n', 'k', 'v');
    const d = join(home, '.cache', 'smart-whale');
    expect(mode(d)).toBe(0o700);
    expect(readdirSync(d).length).toBeGreaterThanOrEqual(2); // the entry and the key
    for (const f of readdirSync(d)) expect(mode(join(d, f)), f).toBe(0o600);
  });
});

describe('permissions and ownership', () => {
  it('an existing directory of ours that is group/world-accessible is tightened to 0700', async () => {
    const d = scratch();
    chmodSync(d, 0o755);
    const c = cacheAt(d);
    await c.ready();
    expect(mode(d)).toBe(0o700);
  });

  it('refuses a symlinked directory with a typed error and writes nothing through it', async () => {
    const target = scratch();
    const link = join(scratch(), 'cache');
    symlinkSync(target, link);
    const c = cacheAt(link);
    await expectWhaleError(() => c.ready(), 'ERR_INVALID_OPTION', 'options.diskDir');
    await c.set('n', 'k', 'v'); // the disk tier is off; the call itself succeeds from L1
    expect(readdirSync(target)).toEqual([]);
    expect(c.stats().l3).toMatchObject({ errors: 1 });
  });

  it('refuses a directory owned by another user', async () => {
    let foreign: string;
    if (process.getuid!() === 0) {
      foreign = scratch();
      chownSync(foreign, 65534, 65534);
    } else {
      foreign = '/'; // owned by root, so foreign to this user
    }
    const e = await expectWhaleError(() => cacheAt(foreign).ready(), 'ERR_INVALID_OPTION', 'options.diskDir');
    expect(e.message).toMatch(/owned by uid/);
  });
});

describe('authenticated entries', () => {
  it('an entry planted by someone without the cache key is a miss plus a counted corruption', async () => {
    const victim = scratch();
    const attacker = scratch();
    await cacheAt(victim).set('n', 'k', 'real'); // creates the victim's key
    await cacheAt(attacker).set('n', 'k', 'planted'); // same layout, another key
    const [name] = entries(attacker);
    writeFileSync(join(victim, name!), readFileSync(join(attacker, name!)));
    const c = cacheAt(victim);
    expect(await c.get('n', 'k')).toBeUndefined();
    expect(c.stats().corruptions).toBe(1);
    expect(entries(victim)).toEqual([]); // dropped
  });

  it('a file in the old unauthenticated format is not served', async () => {
    const d = scratch();
    await cacheAt(d).set('n', 'other', 'x'); // a real entry, so the directory and key exist
    const [name] = entries(d);
    const key = 'whale:n:other';
    const body = Buffer.concat([Buffer.from('S'), Buffer.from('planted')]);
    const header = Buffer.alloc(16);
    Buffer.from('SWC1').copy(header, 0);
    header.writeUInt32LE(Buffer.byteLength(key), 12);
    writeFileSync(join(d, name!), Buffer.concat([header, Buffer.from(key), body]));
    const c = cacheAt(d);
    expect(await c.get('n', 'other')).toBeUndefined();
    expect(c.stats().corruptions).toBe(1);
  });

  it('caches given the same diskKey share entries; the key file is 0600 otherwise', async () => {
    const key = new Uint8Array(32).fill(7);
    const a = scratch();
    const b = scratch();
    await cacheAt(a, { diskKey: key }).set('n', 'k', 'shared');
    for (const f of entries(a)) writeFileSync(join(b, f), readFileSync(join(a, f)));
    expect(await cacheAt(b, { diskKey: key }).get('n', 'k')).toBe('shared');
    expect(readdirSync(a).some((f) => !f.endsWith('.swc'))).toBe(false); // no key file when given

    const c = scratch();
    await cacheAt(c).set('n', 'k', 'v');
    const keyFiles = readdirSync(c).filter((f) => !f.endsWith('.swc'));
    expect(keyFiles).toHaveLength(1);
    expect(mode(join(c, keyFiles[0]!))).toBe(0o600);
    expect(await cacheAt(c).get('n', 'k')).toBe('v'); // the key persists for the next process
  });
});

describe('errors and recovery', () => {
  it('ready() on a path that is a file, or below a file, is a typed error, not a raw ENOTDIR', async () => {
    const file = join(scratch(), 'file');
    writeFileSync(file, 'x');
    await expectWhaleError(() => cacheAt(file).ready(), 'ERR_INVALID_OPTION', 'options.diskDir');
    await expectWhaleError(() => cacheAt(join(file, 'sub')).ready(), 'ERR_INVALID_OPTION', 'options.diskDir');
  });

  it('a disk tier that failed comes back once the folder is fixed (retry with backoff)', async () => {
    const path = join(scratch(), 'cache');
    writeFileSync(path, 'in the way');
    const c = cacheAt(path);
    await expectWhaleError(() => c.ready(), 'ERR_INVALID_OPTION', 'options.diskDir');
    await c.set('n', 'early', 'x');
    expect(c.stats().l3).toMatchObject({ errors: 1 });
    rmSync(path);
    expect(
      await until(async () => {
        await c.set('n', 'k', 'v');
        return existsSync(path) && entries(path).length === 1;
      }, 5000),
    ).toBe(true);
    expect(await cacheAt(path).get('n', 'k')).toBe('v');
    await c.ready(); // healthy now
  });

  it('a failed write (disk full) leaves no temp file behind and keeps the old entry', async () => {
    const d = scratch();
    let full = false;
    const tier = new DiskTier({
      dir: d,
      maxBytes: 1 << 20,
      fs: {
        // Like a real ENOSPC: the file is created and partly written, then the write fails.
        writeFile: async (path, data, opts) => {
          if (!full) return fsWriteFile(path, data, opts);
          await fsWriteFile(path, (data as Uint8Array).subarray(0, 3), opts);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      },
    });
    await tier.set('k', Buffer.from('old'));
    full = true;
    await expect(tier.set('k', Buffer.alloc(1000, 1))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(await tier.get('k')).toMatchObject({ status: 'hit', data: Buffer.from('old') });
    expect(tier.stats()).toMatchObject({ files: 1 });
  });

  it('a failed rename leaves no temp file behind', async () => {
    const d = scratch();
    const tier = new DiskTier({
      dir: d,
      maxBytes: 1 << 20,
      fs: { rename: async () => Promise.reject(Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' })) },
    });
    await expect(tier.set('k', Buffer.from('v'))).rejects.toMatchObject({ code: 'EIO' });
    expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('stale temp files of a crashed writer are removed at start; fresh ones of a live writer are kept', async () => {
    const d = scratch();
    mkdirSync(d, { recursive: true });
    const stale = join(d, 'abc.swc.tmp-1-dead');
    const live = join(d, 'def.swc.tmp-2-live');
    writeFileSync(stale, 'x');
    writeFileSync(live, 'y');
    const { utimesSync } = await import('node:fs');
    utimesSync(stale, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    await new DiskTier({ dir: d, maxBytes: 1 << 20 }).init();
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });
});
