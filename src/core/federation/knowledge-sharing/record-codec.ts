/**
 * One stored change, as bytes: magic "SWKR", body length u32, CRC-32 of the
 * body u32, then the body: kind u8 (1 put, 2 delete), JSON length u32, JSON,
 * and for a put with a vector, the memory module's tensor blob.
 */
import { crc32 } from 'node:zlib';

import { WhaleError } from '../../../common/errors.js';
import type { KnowledgeItem } from './types.js';

export const RECORD_MAGIC = Buffer.from('SWKR');
export const RECORD_HEADER = 12;
const MAX_BODY = 1 << 30;

export type StoredRecord =
  | { kind: 'put'; item: KnowledgeItem; blob?: Uint8Array }
  | { kind: 'delete'; ids: string[] }
  | { kind: 'train'; nlist: number; blob: Uint8Array };

const KIND = { put: 1, delete: 2, train: 3 } as const;

export function encodeRecord(r: StoredRecord): Buffer {
  const json = Buffer.from(
    JSON.stringify(r.kind === 'put' ? r.item : r.kind === 'delete' ? { ids: r.ids } : { nlist: r.nlist }),
  );
  const blob = r.kind !== 'delete' && r.blob ? r.blob : new Uint8Array(0);
  const body = Buffer.allocUnsafe(5 + json.length + blob.length);
  body[0] = KIND[r.kind];
  body.writeUInt32LE(json.length, 1);
  json.copy(body, 5);
  body.set(blob, 5 + json.length);
  const head = Buffer.allocUnsafe(RECORD_HEADER);
  RECORD_MAGIC.copy(head, 0);
  head.writeUInt32LE(body.length, 4);
  head.writeUInt32LE(crc32(body), 8);
  return Buffer.concat([head, body]);
}

export type Parsed =
  | { ok: true; record: StoredRecord; size: number }
  | { ok: false; code: 'ERR_TRUNCATED' | 'ERR_BAD_MAGIC' | 'ERR_CHECKSUM' | 'ERR_CORRUPT'; reason: string };

/** Reads the record at `at`; never throws. */
export function parseRecord(buf: Buffer, at: number): Parsed {
  if (buf.length - at < RECORD_HEADER) return { ok: false, code: 'ERR_TRUNCATED', reason: 'record header cut short' };
  if (!buf.subarray(at, at + 4).equals(RECORD_MAGIC))
    return { ok: false, code: 'ERR_BAD_MAGIC', reason: 'no record magic' };
  const len = buf.readUInt32LE(at + 4);
  if (len < 5 || len > MAX_BODY) return { ok: false, code: 'ERR_CORRUPT', reason: `impossible record length ${len}` };
  if (buf.length - at - RECORD_HEADER < len)
    return { ok: false, code: 'ERR_TRUNCATED', reason: 'record body cut short' };
  const body = buf.subarray(at + RECORD_HEADER, at + RECORD_HEADER + len);
  if (crc32(body) !== buf.readUInt32LE(at + 8))
    return { ok: false, code: 'ERR_CHECKSUM', reason: 'record checksum mismatch' };
  const jsonLen = body.readUInt32LE(1);
  if (5 + jsonLen > body.length) return { ok: false, code: 'ERR_CORRUPT', reason: 'JSON length beyond the record' };
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(5, 5 + jsonLen).toString('utf8'));
  } catch (err) {
    return { ok: false, code: 'ERR_CORRUPT', reason: `record JSON unreadable: ${(err as Error).message}` };
  }
  const size = RECORD_HEADER + len;
  if (body[0] === 2) {
    const ids = (json as { ids?: unknown }).ids;
    if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string'))
      return { ok: false, code: 'ERR_CORRUPT', reason: 'delete record without ids' };
    return { ok: true, record: { kind: 'delete', ids }, size };
  }
  const blob = body.length > 5 + jsonLen ? new Uint8Array(body.subarray(5 + jsonLen)) : undefined;
  if (body[0] === 3) {
    const nlist = (json as { nlist?: unknown }).nlist;
    if (!Number.isInteger(nlist) || !blob)
      return { ok: false, code: 'ERR_CORRUPT', reason: 'train record without centroids' };
    return { ok: true, record: { kind: 'train', nlist: nlist as number, blob }, size };
  }
  if (body[0] !== 1 || !isItem(json)) return { ok: false, code: 'ERR_CORRUPT', reason: 'not a knowledge item record' };
  return { ok: true, record: blob ? { kind: 'put', item: json, blob } : { kind: 'put', item: json }, size };
}

function isItem(v: unknown): v is KnowledgeItem {
  const i = v as Partial<KnowledgeItem>;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof i.id === 'string' &&
    typeof i.key === 'string' &&
    typeof i.topic === 'string' &&
    typeof i.version === 'number' &&
    typeof i.time === 'number' &&
    typeof i.targetModel === 'string' &&
    typeof i.privacy === 'string'
  );
}

/** A damaged record as a typed error (for callers that want to throw it). */
export function recordError(code: string, reason: string, where: string): WhaleError {
  return new WhaleError(code === 'ERR_CHECKSUM' ? 'ERR_CHECKSUM' : 'ERR_CORRUPT', `${where}: ${reason}`, {
    field: where,
  });
}
