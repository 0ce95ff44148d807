/**
 * Messages of one secure-aggregation round (Bonawitz et al. 2017, Fig. 4;
 * SecAgg+ of Bell et al. 2020 when the server assigns sparse neighbourhoods).
 * On the bus they travel in signed envelopes (security/SecureBus), which is
 * what makes the keys of round 0 authentic (the active-adversary variant).
 */
export interface AdvertiseKeys {
  from: string;
  /** X25519 public key for share encryption (c_u). */
  cPk: string;
  /** X25519 public key for pairwise masks (s_u). */
  sPk: string;
}

export interface KeysList {
  session: string;
  threshold: number;
  /** U1: the clients that advertised keys. */
  clients: AdvertiseKeys[];
  /** Each client's neighbours (SecAgg+); absent: every other client of U1. */
  neighbors?: Record<string, string[]>;
}

/** Round 1: client u's shares of s_u^SK and b_u, one ciphertext per neighbour (and itself). */
export interface SharedKeys {
  from: string;
  ciphertexts: Record<string, string>;
}

/** What the server forwards to v: the ciphertexts addressed to v from U2. */
export interface SharesFor {
  /** U2: the clients whose shares were received. */
  u2: string[];
  ciphertexts: Record<string, string>;
}

export interface MaskedInput {
  from: string;
  /** y_u = x_u + PRG(b_u) + Σ ±PRG(s_uv) mod 2^k. */
  y: Uint32Array;
}

export interface UnmaskRequest {
  /** U3: the clients whose masked inputs were received. */
  u3: string[];
}

export interface WireShare {
  x: number;
  y: string;
}

/** Round 3: shares of b_v for v in U3, of s_v^SK for v in U2 \ U3. */
export interface UnmaskResponse {
  from: string;
  selfMaskShares: Record<string, WireShare>;
  keyShares: Record<string, WireShare>;
}
