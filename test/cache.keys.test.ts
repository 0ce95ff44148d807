// Namespaces and keys are encoded unambiguously: no (namespace, key) pair can reach another's entry.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { cacheId, checkNamespace } from '../src/core/memory/cache-key.js';
import { TieredCache, type Tier } from '../src/core/memory/tiered-cache.js';
import { expectWhaleError } from './helpers.js';

const dir = () => mkdtempSync(join(tmpdir(), 'whale-keys-'));

// Pairs whose naive `prefix:namespace:key` joins are the same string.
const colliding: Array<[[string, string], [string, string]]> = [
  [
    ['model-a/emb', 'doc:42'],
    ['model-a/emb:doc', '42'],
  ],
  [
    ['a', 'b:c:d'],
    ['a:b', 'c:d'],
  ],
  [
    ['a%3Ab', 'k'],
    ['a:b', 'k'],
  ], // an escape sequence typed literally
  [
    ['a%', '3Ab:k'],
    ['a%:3Ab', 'k'],
  ],
];

describe('cache ids', () => {
  it('differ for every colliding pair, and keep the readable prefix:namespace:key form otherwise', () => {
    for (const [[n1, k1], [n2, k2]] of colliding) expect(cacheId('whale', n1, k1)).not.toBe(cacheId('whale', n2, k2));
    expect(cacheId('x:y', 'n', 'k')).not.toBe(cacheId('x', 'y:n', 'k'));
    expect(cacheId('whale', 'model-a/emb', 'doc:42')).toBe('whale:model-a/emb:doc:42');
  });

  it('refuse lone UTF-16 surrogates, which no tier below L1 can store (hardening round 2, item 20)', async () => {
    for (const key of ['a\uD800', '\uDC00b', 'x\uDFFFy']) {
      const e = await expectWhaleError(() => cacheId('whale', 'ns', key), 'ERR_INVALID_ARG', 'key');
      expect(e.message).toMatch(/lone UTF-16 surrogate at index \d/);
    }
    await expectWhaleError(() => checkNamespace('n\uD83D'), 'ERR_INVALID_ARG', 'namespace');
    expect(cacheId('whale', 'ns', 'whale \uD83D\uDC33')).toBe('whale:ns:whale \uD83D\uDC33'); // a pair is fine
    const c = new TieredCache({
      diskDir: dir(),
      logger: silentLogger,
      redisUrl: '',
      namespaces: { n: { tiers: ['l1', 'l3'] } },
    });
    await expectWhaleError(() => c.set('n', 'k\uD800', 1), 'ERR_INVALID_ARG', 'key');
    await expectWhaleError(() => c.get('n', '\uDC00'), 'ERR_INVALID_ARG', 'key');
  });

  for (const tiers of [['l1'], ['l3'], ['l1', 'l3']] as Tier[][]) {
    it(`namespace 'model-a/emb' + 'doc:42' is not namespace 'model-a/emb:doc' + '42' (${tiers.join('+')})`, async () => {
      const d = dir();
      const ns = (n: string) => ({ [n]: { tiers } });
      const all = colliding.flatMap(([[n1], [n2]]) => [n1, n2]);
      const opts = { diskDir: d, logger: silentLogger, redisUrl: '', namespaces: Object.assign({}, ...all.map(ns)) };
      const c = new TieredCache(opts);
      for (const [i, [[n1, k1], [n2, k2]]] of colliding.entries()) {
        await c.set(n1, k1, `first-${i}`);
        await c.set(n2, k2, `second-${i}`);
      }
      const fresh = new TieredCache(opts); // reads what the tiers below L1 kept
      for (const reader of [c, fresh]) {
        for (const [i, [[n1, k1], [n2, k2]]] of colliding.entries()) {
          const expectFirst = reader === fresh && !tiers.includes('l3') ? undefined : `first-${i}`;
          const expectSecond = reader === fresh && !tiers.includes('l3') ? undefined : `second-${i}`;
          expect(await reader.get(n1, k1)).toBe(expectFirst);
          expect(await reader.get(n2, k2)).toBe(expectSecond);
        }
      }
      await c.delete('model-a/emb:doc', '42');
      expect(await c.get('model-a/emb', 'doc:42')).toBe('first-0');
    });
  }
});
