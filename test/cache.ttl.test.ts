// Expiry is absolute from the write in every tier; TTL options are validated with typed errors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { MAX_TTL_MS } from '../src/core/memory/cache-options.js';
import { TieredCache } from '../src/core/memory/tiered-cache.js';
import { expectWhaleError } from './helpers.js';

const dir = () => mkdtempSync(join(tmpdir(), 'whale-ttl-'));
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

describe('TTL', () => {
  it('a 300 ms entry promoted from disk to L1 expires 300 ms after its write, not after the promotion', async () => {
    const d = dir();
    const writer = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    const t0 = Date.now();
    await writer.set('n', 'k', 'v', { ttlMs: 300 });
    // The reader's namespace default is far longer: promotion must not apply it either.
    const reader = new TieredCache({
      diskDir: d,
      logger: silentLogger,
      redisUrl: '',
      namespaces: { n: { ttlMs: 60_000 } },
    });
    await sleepUntil(t0 + 150);
    expect(await reader.get('n', 'k')).toBe('v');
    expect(reader.stats().l3).toMatchObject({ hits: 1 });
    expect(await reader.get('n', 'k')).toBe('v');
    expect(reader.stats().l1.hits).toBe(1); // promoted
    await sleepUntil(t0 + 450);
    expect(await reader.get('n', 'k')).toBeUndefined();
  });

  it('getMany promotes with the remaining TTL too', async () => {
    const d = dir();
    const writer = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    const t0 = Date.now();
    await writer.setMany(
      'n',
      [
        ['a', 1],
        ['b', 2],
      ],
      { ttlMs: 300 },
    );
    const reader = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    await sleepUntil(t0 + 150);
    expect(await reader.getMany('n', ['a', 'b'])).toEqual([1, 2]);
    await sleepUntil(t0 + 450);
    expect(await reader.getMany('n', ['a', 'b'])).toEqual([undefined, undefined]);
  });

  it('rejects ttlMs that is not a finite number in (0, MAX_TTL_MS] at set and at construction', async () => {
    const c = new TieredCache({ diskDir: dir(), logger: silentLogger, redisUrl: '' });
    for (const bad of ['100', Infinity, 1e20, MAX_TTL_MS + 1, -1, 0, NaN, null, {}]) {
      await expectWhaleError(() => c.set('n', 'k', 1, { ttlMs: bad as never }), 'ERR_INVALID_ARG', 'ttlMs');
      await expectWhaleError(() => c.setMany('n', [['k', 1]], { ttlMs: bad as never }), 'ERR_INVALID_ARG', 'ttlMs');
      await expectWhaleError(
        () =>
          new TieredCache({
            diskDir: false,
            logger: silentLogger,
            redisUrl: '',
            namespaces: { 'a/b': { ttlMs: bad as never } },
          }),
        'ERR_INVALID_OPTION',
        'options.namespaces["a/b"].ttlMs',
      );
    }
    expect(c.stats().l3).toMatchObject({ files: 0 }); // nothing half-written
  });

  it('a string ttlMs in a namespace policy no longer means "never expires"', async () => {
    await expectWhaleError(
      () =>
        new TieredCache({
          diskDir: false,
          logger: silentLogger,
          redisUrl: '',
          namespaces: { n: { ttlMs: '100' as never } },
        }),
      'ERR_INVALID_OPTION',
      'options.namespaces["n"].ttlMs',
    );
  });

  it('the largest accepted TTL is written to disk and read back (it used to fail silently)', async () => {
    const d = dir();
    const c = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    await c.set('n', 'k', 'long', { ttlMs: MAX_TTL_MS });
    expect(c.stats().l3).toMatchObject({ files: 1, errors: 0 });
    expect(await new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' }).get('n', 'k')).toBe('long');
  });

  it('validates the other options with typed errors naming the field', async () => {
    const base = { diskDir: false as const, logger: silentLogger, redisUrl: '' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ l1MaxBytes: -1 }, 'options.l1MaxBytes'],
      [{ l1MaxBytes: '1000' }, 'options.l1MaxBytes'],
      [{ diskMaxBytes: Infinity }, 'options.diskMaxBytes'],
      [{ redisCommandTimeoutMs: NaN }, 'options.redisCommandTimeoutMs'],
      [{ keyPrefix: '' }, 'options.keyPrefix'],
      [{ diskDir: 42 }, 'options.diskDir'],
      [{ diskKey: new Uint8Array(8) }, 'options.diskKey'],
      [{ namespaces: { n: { tiers: ['l4'] } } }, 'options.namespaces["n"].tiers'],
      [{ namespaces: { n: { write: 'around' } } }, 'options.namespaces["n"].write'],
      [{ namespaces: { n: { loader: 'fn' } } }, 'options.namespaces["n"].loader'],
      [{ namespaces: { n: null } }, 'options.namespaces["n"]'],
    ];
    for (const [bad, field] of cases) {
      await expectWhaleError(() => new TieredCache({ ...base, ...bad } as never), 'ERR_INVALID_OPTION', field);
    }
  });
});
