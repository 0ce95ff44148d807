/**
 * The server's side of a secure-aggregation round: it routes keys and
 * encrypted shares, sums the masked inputs mod 2^k and, from at least t shares
 * per client, removes the self masks of the survivors and the pairwise masks
 * of the clients that dropped after sharing their keys. It learns the sum of
 * the survivors' inputs and nothing else; with fewer than t shares it stops
 * with ERR_BELOW_THRESHOLD and no sum.
 */
import { randomBytes, randomInt } from 'node:crypto';

import { WhaleError } from '../../../../common/errors.js';
import { pairSeed } from './client.js';
import { privateFromBytes } from './keys.js';
import type {
  AdvertiseKeys,
  KeysList,
  MaskedInput,
  SharedKeys,
  SharesFor,
  UnmaskRequest,
  UnmaskResponse,
  WireShare,
} from './messages.js';
import { addMasks, sumRows, type MaskEngine } from './ring.js';
import { combine } from './shamir.js';

export interface SecAggServerOptions {
  /** t: shares needed to recover a client's secrets (and the fewest clients a round may continue with). */
  threshold: number;
  /** Number of ring elements per input. */
  length: number;
  bits: number;
  /** SecAgg+: each client masks with and shares to `degree` neighbours (even; absent: everyone). */
  degree?: number;
  session?: string;
  engine?: MaskEngine;
}

export interface SecAggResult {
  /** Σ x_u over U3, mod 2^k. */
  sum: Uint32Array;
  /** Clients whose inputs are in the sum. */
  included: string[];
  /** Clients that shared keys but sent no input (their pairwise masks were removed). */
  droppedAfterSharing: string[];
}

export interface SecAggTraffic {
  /** Bytes the server received, by phase. */
  up: Record<'advertise' | 'share' | 'masked' | 'unmask', number>;
  /** Bytes the server sent, by phase. */
  down: Record<'keys' | 'shares' | 'u3', number>;
}

export class SecAggServer {
  readonly session: string;
  readonly traffic: SecAggTraffic = {
    up: { advertise: 0, share: 0, masked: 0, unmask: 0 },
    down: { keys: 0, shares: 0, u3: 0 },
  };
  private list: KeysList | undefined;
  private u2: string[] = [];
  private masked = new Map<string, Uint32Array>();

  constructor(readonly o: SecAggServerOptions) {
    if (!(Number.isInteger(o.threshold) && o.threshold >= 2))
      throw new WhaleError('ERR_INVALID_OPTION', `threshold: must be an integer >= 2, got ${o.threshold}`, {
        field: 'threshold',
      });
    if (!(Number.isInteger(o.length) && o.length > 0))
      throw new WhaleError('ERR_INVALID_OPTION', `length: must be an integer > 0, got ${o.length}`, {
        field: 'length',
      });
    if (o.degree !== undefined && !(Number.isInteger(o.degree) && o.degree >= 2 && o.degree % 2 === 0)) {
      throw new WhaleError('ERR_INVALID_OPTION', `degree: must be an even integer >= 2, got ${o.degree}`, {
        field: 'degree',
      });
    }
    this.session = o.session ?? randomBytes(12).toString('base64url');
  }

  private below(what: string, have: number): never {
    throw new WhaleError(
      'ERR_BELOW_THRESHOLD',
      `${what}: ${have} clients < threshold ${this.o.threshold}; the round is abandoned`,
      { field: what, have, threshold: this.o.threshold },
    );
  }

  /** Round 0 → the keys list U1 (with neighbourhoods for SecAgg+). */
  receiveKeys(msgs: readonly AdvertiseKeys[]): KeysList {
    const seen = new Set<string>();
    for (const m of msgs) {
      if (seen.has(m.from))
        throw new WhaleError('ERR_INVALID_MESSAGE', `from: '${m.from}' advertised twice`, { field: 'from' });
      seen.add(m.from);
      this.traffic.up.advertise += bytesOf(m);
    }
    if (msgs.length < this.o.threshold) this.below('u1', msgs.length);
    const list: KeysList = { session: this.session, threshold: this.o.threshold, clients: [...msgs] };
    const d = this.o.degree;
    if (d !== undefined && d < msgs.length - 1)
      list.neighbors = harary(
        msgs.map((m) => m.from),
        d,
      );
    const size = bytesOf(list);
    this.traffic.down.keys += size * msgs.length;
    this.list = list;
    return list;
  }

  private neighbors(v: string): string[] {
    const l = this.list!;
    return l.neighbors?.[v] ?? l.clients.map((c) => c.from).filter((u) => u !== v);
  }

  /** Round 1 → what to forward to each client of U2. */
  receiveShares(msgs: readonly SharedKeys[]): Map<string, SharesFor> {
    const l = this.list;
    if (!l) throw new WhaleError('ERR_INVALID_STATE', 'receiveKeys() first', { field: 'state' });
    const byFrom = new Map<string, SharedKeys>();
    for (const m of msgs) {
      if (!l.clients.some((c) => c.from === m.from))
        throw new WhaleError('ERR_INVALID_MESSAGE', `from: '${m.from}' is not in U1`, { field: 'from' });
      byFrom.set(m.from, m);
      this.traffic.up.share += bytesOf(m);
    }
    this.u2 = [...byFrom.keys()];
    if (this.u2.length < this.o.threshold) this.below('u2', this.u2.length);
    const out = new Map<string, SharesFor>();
    for (const v of this.u2) {
      const ciphertexts: Record<string, string> = {};
      for (const u of this.u2) {
        const ct = byFrom.get(u)!.ciphertexts[v];
        if (ct !== undefined) ciphertexts[u] = ct;
      }
      const f: SharesFor = { u2: this.u2, ciphertexts };
      this.traffic.down.shares += bytesOf(f);
      out.set(v, f);
    }
    return out;
  }

  /** Round 2 → U3, the clients asked for their unmasking shares. */
  receiveMasked(msgs: readonly MaskedInput[]): UnmaskRequest {
    for (const m of msgs) {
      if (!this.u2.includes(m.from))
        throw new WhaleError('ERR_INVALID_MESSAGE', `from: '${m.from}' is not in U2`, { field: 'from' });
      if (!(m.y instanceof Uint32Array) || m.y.length !== this.o.length)
        throw new WhaleError('ERR_SHAPE_MISMATCH', `y: expected ${this.o.length} ring elements from '${m.from}'`, {
          field: 'y',
        });
      this.masked.set(m.from, m.y);
      this.traffic.up.masked += 4 * m.y.length + 32;
    }
    if (this.masked.size < this.o.threshold) this.below('u3', this.masked.size);
    const req = { u3: [...this.masked.keys()] };
    this.traffic.down.u3 += bytesOf(req) * this.masked.size;
    return req;
  }

  /** Round 3 → the sum of the survivors' inputs, or ERR_BELOW_THRESHOLD and nothing. */
  unmask(responses: readonly UnmaskResponse[]): SecAggResult {
    const l = this.list!;
    const u3 = [...this.masked.keys()],
      u3Set = new Set(u3);
    const valid = responses.filter((r) => u3Set.has(r.from));
    for (const r of valid) this.traffic.up.unmask += bytesOf(r);
    if (valid.length < this.o.threshold) this.below('u4', valid.length);
    const dropped = this.u2.filter((v) => !u3Set.has(v));
    const seeds: Uint8Array[] = [],
      signs: number[] = [];
    // Self masks of the survivors.
    for (const v of u3) {
      seeds.push(
        this.recover(
          v,
          valid.map((r) => r.selfMaskShares[v]),
          'selfMaskShares',
        ),
      );
      signs.push(-1);
    }
    // Pairwise masks between each survivor and each client that dropped after sharing.
    for (const v of dropped) {
      const sk = privateFromBytes(
        this.recover(
          v,
          valid.map((r) => r.keyShares[v]),
          'keyShares',
        ),
        l.clients.find((c) => c.from === v)!.sPk,
      );
      for (const u of this.neighbors(v)) {
        if (!u3Set.has(u)) continue;
        seeds.push(pairSeed(sk, l.clients.find((c) => c.from === u)!.sPk, l.session, u, v));
        signs.push(u < v ? -1 : 1);
      }
    }
    // Everything needed is recovered: only now is the sum formed.
    const sum = sumRows(
      u3.map((u) => this.masked.get(u)!),
      this.o.bits,
      this.o.engine,
    );
    addMasks(sum, seeds, signs, this.o.bits, this.o.engine);
    return { sum, included: u3, droppedAfterSharing: dropped };
  }

  private recover(v: string, shares: Array<WireShare | undefined>, kind: string): Uint8Array {
    const got = shares.filter((s): s is WireShare => s !== undefined);
    if (got.length < this.o.threshold) {
      throw new WhaleError(
        'ERR_BELOW_THRESHOLD',
        `${kind}.${v}: ${got.length} shares < threshold ${this.o.threshold}; the round is abandoned`,
        { field: `${kind}.${v}` },
      );
    }
    return combine(
      got.slice(0, this.o.threshold).map((s) => ({ x: s.x, y: new Uint8Array(Buffer.from(s.y, 'base64')) })),
    );
  }
}

/** Harary-like graph (Bell et al. 2020): a random cyclic order, each client linked to degree/2 on each side. */
function harary(ids: readonly string[], degree: number): Record<string, string[]> {
  const order = [...ids];
  for (let i = order.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const n = order.length,
    out: Record<string, string[]> = {};
  order.forEach((id, i) => {
    const nb: string[] = [];
    for (let k = 1; k <= degree / 2; k++) nb.push(order[(i + k) % n]!, order[(i - k + n) % n]!);
    out[id] = [...new Set(nb)];
  });
  return out;
}

/** Approximate wire size: JSON, with ring vectors counted as 4 bytes per element. */
function bytesOf(m: unknown): number {
  return Buffer.byteLength(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint32Array ? `<${v.length * 4}>` : v)));
}
