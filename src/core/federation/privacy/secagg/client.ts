/** One client's side of a secure-aggregation round. */
import { randomBytes, type KeyObject } from 'node:crypto';

import { WhaleError } from '../../../../common/errors.js';
import { agree, derive, generatePair, open, privateBytes, seal, type X25519Pair } from './keys.js';
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
import { addMasks, type MaskEngine } from './ring.js';
import { split } from './shamir.js';

interface Held {
  s: WireShare;
  b: WireShare;
}

export interface SecAggClientOptions {
  bits: number;
  engine?: MaskEngine;
}

export class SecAggClient {
  private readonly c: X25519Pair = generatePair();
  private readonly s: X25519Pair = generatePair();
  private readonly selfSeed = new Uint8Array(randomBytes(32));
  private keys: KeysList | undefined;
  private u2: string[] | undefined;
  private globalU2: ReadonlySet<string> = new Set();
  private sentInput = false;
  /** Shares other clients gave this one, by their id. */
  private readonly held = new Map<string, Held>();

  constructor(
    readonly id: string,
    private readonly o: SecAggClientOptions,
  ) {}

  advertise(): AdvertiseKeys {
    return { from: this.id, cPk: this.c.publicText, sPk: this.s.publicText };
  }

  private neighbors(list: KeysList): string[] {
    const all = list.clients.map((c) => c.from);
    return (list.neighbors?.[this.id] ?? all).filter((v) => v !== this.id && all.includes(v));
  }

  /** Round 1: shares of s_u^SK and b_u for each neighbour and itself, encrypted to each. */
  shareKeys(list: KeysList): SharedKeys {
    if (!list.clients.some((c) => c.from === this.id))
      throw new WhaleError('ERR_INVALID_MESSAGE', `clients: '${this.id}' is not in the keys list`, {
        field: 'clients',
      });
    const ids = list.clients.map((c) => c.from);
    if (new Set(ids).size !== ids.length)
      throw new WhaleError('ERR_INVALID_MESSAGE', 'clients: duplicate ids', { field: 'clients' });
    const holders = [this.id, ...this.neighbors(list)];
    if (holders.length < list.threshold)
      throw new WhaleError(
        'ERR_BELOW_THRESHOLD',
        `clients: ${holders.length} share holders < threshold ${list.threshold}`,
        { field: 'clients' },
      );
    if (holders.length > 255)
      throw new WhaleError('ERR_INVALID_ARG', 'neighbors: at most 254 neighbours per client', { field: 'neighbors' });
    this.keys = list;
    const xs = holders.map((_, i) => i + 1);
    const sShares = split(privateBytes(this.s.privateKey), xs, list.threshold);
    const bShares = split(this.selfSeed, xs, list.threshold);
    const ciphertexts: Record<string, string> = {};
    holders.forEach((v, i) => {
      const plain = Buffer.from(JSON.stringify({ s: wire(sShares[i]!), b: wire(bShares[i]!) }));
      ciphertexts[v] = seal(this.shareKey(this.c.privateKey, list, v), plain, `${list.session}/${this.id}->${v}`);
    });
    return { from: this.id, ciphertexts };
  }

  private pk(list: KeysList, v: string): AdvertiseKeys {
    const k = list.clients.find((c) => c.from === v);
    if (!k) throw new WhaleError('ERR_INVALID_MESSAGE', `clients: no keys for '${v}'`, { field: 'clients' });
    return k;
  }

  private shareKey(own: KeyObject, list: KeysList, peer: string): Uint8Array {
    const [a, b] = [this.id, peer].sort();
    return derive(agree(own, this.pk(list, peer).cPk, `clients.${peer}.cPk`), `${list.session}/enc/${a}/${b}`);
  }

  /** Round 2: decrypts the shares received and masks the (ring-encoded) input. */
  maskedInput(shares: SharesFor, x: Uint32Array): MaskedInput {
    const list = this.keys;
    if (!list) throw new WhaleError('ERR_INVALID_STATE', 'shareKeys() first', { field: 'state' });
    const mine = new Set([this.id, ...this.neighbors(list)]);
    const u2 = shares.u2.filter((v) => mine.has(v));
    if (!shares.u2.includes(this.id))
      throw new WhaleError('ERR_INVALID_MESSAGE', `u2: '${this.id}' is missing`, { field: 'u2' });
    if (u2.length < list.threshold)
      throw new WhaleError('ERR_BELOW_THRESHOLD', `u2: ${u2.length} clients < threshold ${list.threshold}`, {
        field: 'u2',
      });
    for (const v of u2) {
      const ct = shares.ciphertexts[v];
      if (ct === undefined)
        throw new WhaleError('ERR_INVALID_MESSAGE', `ciphertexts.${v}: missing`, { field: `ciphertexts.${v}` });
      const plain = JSON.parse(
        open(
          this.shareKey(this.c.privateKey, list, v),
          ct,
          `${list.session}/${v}->${this.id}`,
          `ciphertexts.${v}`,
        ).toString(),
      ) as Held;
      this.held.set(v, plain);
    }
    this.u2 = u2;
    this.globalU2 = new Set(shares.u2);
    const y = Uint32Array.from(x);
    const seeds: Uint8Array[] = [this.selfSeed],
      signs: number[] = [1];
    for (const v of u2) {
      if (v === this.id) continue;
      seeds.push(pairSeed(this.s.privateKey, this.pk(list, v).sPk, list.session, this.id, v));
      signs.push(this.id < v ? 1 : -1);
    }
    addMasks(y, seeds, signs, this.o.bits, this.o.engine);
    this.sentInput = true;
    return { from: this.id, y };
  }

  /** Round 3: b-shares of survivors, s-shares of those who dropped after round 1 (never both for one client). */
  unmask(req: UnmaskRequest): UnmaskResponse {
    const list = this.keys,
      u2 = this.u2;
    if (!list || !u2 || !this.sentInput)
      throw new WhaleError('ERR_INVALID_STATE', 'maskedInput() first', { field: 'state' });
    const u3 = new Set(req.u3);
    if (req.u3.some((v) => !this.globalU2.has(v)))
      throw new WhaleError('ERR_INVALID_MESSAGE', 'u3: names clients outside U2', { field: 'u3' });
    const u3Here = u2.filter((v) => u3.has(v));
    if (u3Here.length < list.threshold)
      throw new WhaleError(
        'ERR_BELOW_THRESHOLD',
        `u3: ${u3Here.length} surviving neighbours < threshold ${list.threshold}`,
        { field: 'u3' },
      );
    const selfMaskShares: Record<string, WireShare> = {},
      keyShares: Record<string, WireShare> = {};
    for (const v of u2) {
      const h = this.held.get(v)!;
      if (u3.has(v)) selfMaskShares[v] = h.b;
      else keyShares[v] = h.s;
    }
    return { from: this.id, selfMaskShares, keyShares };
  }
}

/** The pairwise seed s_uv (same for u and v): HKDF of the X25519 agreement, bound to the session and the pair. */
export function pairSeed(own: KeyObject, peerPk: string, session: string, a: string, b: string): Uint8Array {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return derive(agree(own, peerPk), `${session}/mask/${lo}/${hi}`);
}

function wire(s: { x: number; y: Uint8Array }): WireShare {
  return { x: s.x, y: Buffer.from(s.y).toString('base64') };
}
