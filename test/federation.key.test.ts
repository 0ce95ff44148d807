// The federation key: >= 256 bits of entropy or a private key file; no built-in default.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FederationService } from '../src/services/federation-service.js';
import { passphraseBits, resolveFederationKey } from '../src/services/federation-key.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-fedkey-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(name: string, content: string | Buffer, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

describe('federation key rule', () => {
  it('accepts 32 random bytes as base64 or hex, and a long passphrase', () => {
    expect(
      resolveFederationKey({ env: { WHALE_FEDERATION_SECRET: randomBytes(32).toString('base64') } }).length,
    ).toBeGreaterThanOrEqual(32);
    expect(resolveFederationKey({ env: { WHALE_FEDERATION_SECRET: randomBytes(32).toString('hex') } })).toHaveLength(
      32,
    );
    const phrase = 'Mauve-Otter7 juggles 41 quartz Pebbles; Sleet/Harbor & Cobalt-Lantern!';
    expect(passphraseBits(phrase)).toBeGreaterThanOrEqual(256);
    expect(resolveFederationKey({ secret: phrase }).length).toBeGreaterThan(0);
    expect(resolveFederationKey({ secret: randomBytes(32) })).toHaveLength(32);
  });

  it.each([
    ['one character', 'x'],
    ['a dictionary passphrase', 'correct horse battery staple'],
    ['24 random bytes in base64', randomBytes(24).toString('base64')],
    ['31 random bytes in hex', randomBytes(31).toString('hex')],
    ['32 zero bytes in hex', '00'.repeat(32)],
    ['a long repetition', 'ab'.repeat(100)],
    ['a hex-looking repetition', 'abcd'.repeat(32)],
  ])('refuses %s', async (_name, secret) => {
    await expectWhaleError(
      () => resolveFederationKey({ env: { WHALE_FEDERATION_SECRET: secret } }),
      'ERR_INVALID_OPTION',
      'WHALE_FEDERATION_SECRET',
    );
  });

  it('does not echo a refused secret', async () => {
    const weak = randomBytes(20).toString('base64');
    const e = await expectWhaleError(() => resolveFederationKey({ secret: weak }), 'ERR_INVALID_OPTION', 'secret');
    expect(e.message).not.toContain(weak);
  });

  it('reads a private key file (text or raw bytes) and refuses one others can read', async () => {
    expect(
      resolveFederationKey({
        env: { WHALE_FEDERATION_KEY_FILE: keyFile('b64', `${randomBytes(32).toString('base64')}\n`) },
      }).length,
    ).toBeGreaterThan(0);
    expect(resolveFederationKey({ keyFile: keyFile('raw', randomBytes(32)) })).toHaveLength(32);
    await expectWhaleError(
      () =>
        resolveFederationKey({
          env: { WHALE_FEDERATION_KEY_FILE: keyFile('open', randomBytes(32).toString('hex'), 0o644) },
        }),
      'ERR_INVALID_OPTION',
      'WHALE_FEDERATION_KEY_FILE',
    );
    await expectWhaleError(
      () => resolveFederationKey({ keyFile: keyFile('short', randomBytes(16)) }),
      'ERR_INVALID_OPTION',
      'keyFile',
    );
    await expectWhaleError(
      () => resolveFederationKey({ keyFile: join(dir, 'missing') }),
      'ERR_INVALID_OPTION',
      'keyFile',
    );
    const both = {
      WHALE_FEDERATION_KEY_FILE: keyFile('x', randomBytes(32)),
      WHALE_FEDERATION_SECRET: randomBytes(32).toString('base64'),
    };
    await expectWhaleError(() => resolveFederationKey({ env: both }), 'ERR_INVALID_OPTION', 'WHALE_FEDERATION_SECRET');
  });

  it("with no key configured, 'encrypted' sharing refuses with a typed error and publishes nothing", async () => {
    const bus = new LocalBus();
    const fed = new FederationService(bus, new MemoryStateStore(), { nodeId: 'n', env: {} });
    await fed.initialize();
    const e = await expectWhaleError(
      () => fed.shareKnowledge('a', 'b', { w: 1 }, { privacy: 'encrypted' }),
      'ERR_INVALID_OPTION',
      'WHALE_FEDERATION_SECRET',
    );
    expect(e.message).toMatch(/WHALE_FEDERATION_KEY_FILE/);
    expect(bus.retained(TOPICS.federationKnowledge)).toHaveLength(0);
    await fed.shutdown();
    await bus.close();
  });

  it('replay window options are validated', async () => {
    const bus = new LocalBus();
    await expectWhaleError(
      () => new FederationService(bus, new MemoryStateStore(), { nodeId: 'n', replay: { maxAgeMs: Infinity } }),
      'ERR_INVALID_OPTION',
      'options.replay.maxAgeMs',
    );
    await expectWhaleError(
      () => new FederationService(bus, new MemoryStateStore(), { nodeId: 'n', replay: { maxSkewMs: -1 } }),
      'ERR_INVALID_OPTION',
      'options.replay.maxSkewMs',
    );
    await bus.close();
  });

  it('a weak configured secret fails at initialize(), not at the first message', async () => {
    const bus = new LocalBus();
    const fed = new FederationService(bus, new MemoryStateStore(), {
      nodeId: 'n',
      env: { WHALE_FEDERATION_SECRET: 'x' },
    });
    await expectWhaleError(() => fed.initialize(), 'ERR_INVALID_OPTION', 'WHALE_FEDERATION_SECRET');
    await bus.close();
  });
});
