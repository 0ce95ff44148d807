/**
 * The global model and the history of completed rounds, written as one
 * entry per federation after every round (one atomic write: the disk tier
 * renames a finished temp file, Redis SETs a whole value), so a coordinator
 * restarted after a crash resumes from the last completed round.
 *
 * Layout (format 2): u32 LE header length | header JSON | weights (f32 LE) | SHA-256 of everything
 * before it. The digest covers the round number and the history as well as the weights, so a
 * checkpoint whose round was edited is refused, not resumed at the wrong round. (A digest, not a
 * signature: it detects damage and naive edits, not someone who can rewrite the whole store.)
 */
import { createHash } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';
import { sha256Hex } from './claim-check.js';
import type { KeyValueStore } from './kv-store.js';
import type { RoundResult } from './round-result.js';

export interface Checkpoint {
  federationId: string;
  /** Last completed round (0: only the initial model). */
  round: number;
  weights: Float32Array;
  history: RoundResult[];
  savedAt: number;
}

const FORMAT = 2;
const DIGEST_BYTES = 32;

interface Header {
  /** Format 2: a trailing SHA-256 covers the header and the weights. */
  v: number;
  federationId: string;
  round: number;
  params: number;
  sha256: string;
  history: RoundResult[];
  savedAt: number;
}

export class CheckpointStore {
  constructor(private readonly kv: KeyValueStore) {}

  private key(federationId: string): string {
    return `fed/ckpt/${federationId}`;
  }

  async save(c: Omit<Checkpoint, 'savedAt'>): Promise<void> {
    const w = new Uint8Array(c.weights.buffer, c.weights.byteOffset, c.weights.byteLength);
    const header: Header = {
      v: FORMAT,
      federationId: c.federationId,
      round: c.round,
      params: c.weights.length,
      sha256: sha256Hex(w),
      history: c.history,
      savedAt: Date.now(),
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const body = 4 + json.length + w.length;
    const out = new Uint8Array(body + DIGEST_BYTES);
    new DataView(out.buffer).setUint32(0, json.length, true);
    out.set(json, 4);
    out.set(w, 4 + json.length);
    out.set(createHash('sha256').update(out.subarray(0, body)).digest(), body);
    await this.kv.set(this.key(c.federationId), out);
  }

  /** The last checkpoint, undefined when there is none; ERR_CORRUPT when it fails its checks. */
  async load(federationId: string): Promise<Checkpoint | undefined> {
    const bytes = await this.kv.get(this.key(federationId));
    if (!bytes) return undefined;
    const bad = (why: string): never => {
      throw new WhaleError('ERR_CORRUPT', `checkpoint of ${federationId}: ${why}`, { field: 'checkpoint' });
    };
    if (bytes.length < 4) bad('truncated');
    const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
    if (4 + n > bytes.length) bad('truncated header');
    let h: Header;
    try {
      h = JSON.parse(Buffer.from(bytes.subarray(4, 4 + n)).toString('utf8')) as Header;
    } catch {
      return bad('header is not JSON');
    }
    if (typeof h !== 'object' || h === null) return bad('header is not an object');
    if (h.v !== FORMAT)
      bad(
        `written in format ${h.v ?? 1}, whose hash does not cover the round number; it cannot be verified (start a new --federation-id)`,
      );
    if (bytes.length < 4 + n + DIGEST_BYTES) bad('truncated (no digest)');
    const body = bytes.length - DIGEST_BYTES;
    const digest = createHash('sha256').update(bytes.subarray(0, body)).digest();
    if (!digest.equals(Buffer.from(bytes.subarray(body))))
      bad('its round, history or weights do not match its SHA-256 (edited or damaged)');
    const w = bytes.slice(4 + n, body);
    if (!Number.isSafeInteger(h.round) || h.round < 0)
      bad(`round: expected an integer >= 0, got ${JSON.stringify(h.round)}`);
    if (w.length !== h.params * 4) bad(`holds ${w.length} weight bytes, header says ${h.params} floats`);
    if (sha256Hex(w) !== h.sha256) bad('weights do not match their hash');
    if (h.federationId !== federationId) bad(`belongs to ${h.federationId}`);
    if (!Array.isArray(h.history) || (h.history.length > 0 && h.history.at(-1)?.round !== h.round))
      bad(`round ${h.round} does not match its history`);
    return {
      federationId,
      round: h.round,
      weights: new Float32Array(w.buffer),
      history: h.history,
      savedAt: h.savedAt,
    };
  }

  async clear(federationId: string): Promise<void> {
    await this.kv.delete(this.key(federationId));
  }
}
