// Large results come from memory the addon recycles after their arrays are
// collected; a child process (node --expose-gc) checks that no live result is
// ever handed out again (test/native-results.child.ts).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

import { describe, expect, it } from 'vitest';

const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');

describe('recycled result memory', () => {
  // With the pool (the default on Node 20) and without it: results transfer,
  // clone and stay intact either way.
  it.each(['on', 'off'])(
    'keeps every live result intact across gc and event-loop turns (pool %s)',
    (pool) => {
      const r = spawnSync(process.execPath, ['--expose-gc', viteNode, 'test/native-results.child.ts'], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, WHALE_RESULT_POOL: pool },
      });
      expect(r.signal).toBeNull();
      expect(r.stdout.trim().split('\n').pop()).toBe('ok');
      expect(r.status).toBe(0);
    },
    130_000,
  );
});
