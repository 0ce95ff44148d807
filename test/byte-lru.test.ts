import { describe, expect, it } from 'vitest';

import { ByteLru } from '../src/core/memory/byte-lru.js';

describe('ByteLru', () => {
  it('evicts least recently used entries by bytes, not by count', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    expect(lru.get('a')).toBe('A'); // a is now most recent
    lru.set('c', 'C', 40); // 120 > 100: b goes
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe('A');
    expect(lru.stats()).toMatchObject({ entries: 2, bytes: 80, evictions: 1 });
    lru.set('big', 'X', 90); // evicts both others
    expect(lru.stats()).toMatchObject({ entries: 1, bytes: 90, evictions: 3 });
  });

  it('refuses a value larger than the whole budget without evicting anything', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 10);
    expect(lru.set('huge', 'H', 101)).toBe(false);
    expect(lru.get('a')).toBe('A');
  });

  it('replacing a key adjusts the byte count', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 60);
    lru.set('a', 'A2', 30);
    expect(lru.stats().bytes).toBe(30);
    expect(lru.get('a')).toBe('A2');
  });

  it('expires entries by TTL', () => {
    let now = 1000;
    const lru = new ByteLru<string>(100, () => now);
    lru.set('a', 'A', 10, 50);
    lru.set('b', 'B', 10);
    now = 1049;
    expect(lru.get('a')).toBe('A');
    now = 1050;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.get('b')).toBe('B');
    expect(lru.stats()).toMatchObject({ entries: 1, bytes: 10, expirations: 1 });
  });

  it('setUntil keeps an absolute expiry (a value promoted from a lower tier keeps the time it has left)', () => {
    let now = 1000;
    const lru = new ByteLru<string>(100, () => now);
    expect(lru.setUntil('a', 'A', 10, 1300)).toBe(true);
    expect(lru.setUntil('gone', 'G', 10, 1000)).toBe(false); // already expired: not stored
    expect(lru.setUntil('never', 'N', 10, Infinity)).toBe(true);
    now = 1299;
    expect(lru.get('a')).toBe('A');
    now = 1300;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.get('gone')).toBeUndefined();
    now = 1e15;
    expect(lru.get('never')).toBe('N');
    expect(lru.stats()).toMatchObject({ entries: 1, bytes: 10 });
  });
});
