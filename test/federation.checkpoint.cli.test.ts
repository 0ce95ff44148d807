// Issue 23, item 13, from outside: `whale federate` as a child process against its own checkpoint store.
// An edited round number is refused, a checkpoint of another architecture is named at once, a bad
// --federation-id is a usage error (2), and a run without --store-dir says where its checkpoint is and
// leaves no temporary directory behind after a clean end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const whale = join(root, 'bin', 'whale.js');
const env = { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '' };
const SMALL = ['--model', '2nn', '--clients', '2', '--fraction', '1', '--train-count', '200', '--batch', '50'];

function federate(args: string[], timeout = 120_000) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [whale, 'federate', ...args], { encoding: 'utf8', env, timeout });
  return { ...r, seconds: (Date.now() - t0) / 1000 };
}

describe('whale federate checkpoints (issue 23 item 13)', () => {
  const store = mkdtempSync(join(tmpdir(), 'whale-ckpt-cli-'));

  it('an edited round number is refused on resume (the digest covers it)', () => {
    const first = federate([...SMALL, '--rounds', '2', '--store-dir', store, '--federation-id', 'edit-me']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain(`federation edit-me, checkpoints in ${store}\n`);
    expect(first.stdout).toMatch(/summary: 2 rounds/);
    const file = join(store, 'fed~ckpt~edit-me');
    const bytes = readFileSync(file);
    const n = bytes.readUInt32LE(0);
    const header = bytes.subarray(4, 4 + n).toString('utf8');
    expect(header).toContain('"round":2,');
    // Same length: only the round changes, the weights and their own hash stay valid.
    writeFileSync(
      file,
      Buffer.concat([
        bytes.subarray(0, 4),
        Buffer.from(header.replace('"round":2,', '"round":1,')),
        bytes.subarray(4 + n),
      ]),
    );
    const again = federate([...SMALL, '--rounds', '3', '--store-dir', store, '--federation-id', 'edit-me']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(
      /^whale federate: checkpoint of edit-me: its round, history or weights do not match its SHA-256 \(edited or damaged\) \[ERR_CORRUPT\]$/m,
    );
    expect(again.stdout).not.toMatch(/^round /m);
  }, 240_000);

  it('resuming a 2NN checkpoint as --model cnn says the checkpoint does not match the model, at once', () => {
    const first = federate([...SMALL, '--rounds', '1', '--store-dir', store, '--federation-id', 'arch']);
    expect(first.status, first.stderr).toBe(0);
    const cnn = federate([
      ...SMALL.map((a) => (a === '2nn' ? 'cnn' : a)),
      '--rounds',
      '2',
      '--store-dir',
      store,
      '--federation-id',
      'arch',
    ]);
    expect(cnn.status).toBe(1);
    expect(cnn.stderr).toMatch(
      /checkpoint of arch \(after round 1\) holds \d+ parameters, this model has \d+: it was written for another model or architecture .*\[ERR_SHAPE_MISMATCH\]/,
    );
    expect(cnn.stderr).not.toMatch(/ERR_NO_CLIENTS/);
    expect(cnn.stdout).not.toMatch(/^round /m);
    expect(cnn.seconds).toBeLessThan(60);
  }, 240_000);

  it('a bad --federation-id is a usage error: exit 2, nothing run', () => {
    for (const id of ['has space', 'x/../y', 'a'.repeat(101), '']) {
      const r = federate([...SMALL, '--rounds', '1', '--federation-id', id], 30_000);
      expect(r.status, `${JSON.stringify(id)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^whale federate: --federation-id: 1-100 of the characters/);
      expect(r.stdout).not.toMatch(/^round /m);
    }
  }, 120_000);

  it('without --store-dir: the federation id and the temporary store are printed, and the store is removed at a clean end', () => {
    const r = federate([...SMALL, '--rounds', '1']);
    expect(r.status, r.stderr).toBe(0);
    const m =
      /federation (mnist-2nn-iid-[a-z0-9]+), checkpoints in (\S+) \(temporary: removed at a clean end, kept if the run fails or is killed\)/.exec(
        r.stdout,
      );
    expect(m, r.stdout).not.toBeNull();
    expect(m![2]!.startsWith(join(tmpdir(), 'whale-federation-'))).toBe(true);
    expect(existsSync(m![2]!)).toBe(false);
  }, 240_000);
});
