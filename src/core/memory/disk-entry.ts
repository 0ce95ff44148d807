/**
 * One disk entry: `SWC2` | expiresAt (u64 LE, ms since epoch, 0 = never) |
 * id length (u32 LE) | id (UTF-8) | value | HMAC-SHA256 of everything before
 * it under the cache's key. Without the key an entry cannot be forged, so a
 * planted or foreign file is refused rather than served.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const MAGIC = Buffer.from('SWC2');
const HEADER = 16;
const TAG = 32;

export interface DiskEntry {
  id: string;
  /** ms since epoch; Infinity = never. */
  expiresAt: number;
  data: Buffer;
}

const mac = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

export function encodeEntry(key: Uint8Array, e: { id: string; expiresAt: number; data: Uint8Array }): Buffer {
  const id = Buffer.from(e.id, 'utf8');
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header.writeBigUInt64LE(e.expiresAt === Infinity ? 0n : BigInt(Math.max(1, Math.ceil(e.expiresAt))), 4);
  header.writeUInt32LE(id.length, 12);
  return Buffer.concat([header, id, e.data, mac(key, header, id, e.data)]);
}

/** The entry, or the reason it is refused. */
export function parseEntry(key: Uint8Array, file: Buffer): DiskEntry | string {
  if (file.length < HEADER + TAG || !file.subarray(0, 4).equals(MAGIC)) return 'bad header';
  const body = file.subarray(0, file.length - TAG);
  if (!timingSafeEqual(mac(key, body), file.subarray(file.length - TAG)))
    return 'authentication failed (not written with this cache key)';
  const idLen = file.readUInt32LE(12);
  if (HEADER + idLen > body.length) return 'truncated id';
  const expiresAt = Number(file.readBigUInt64LE(4));
  return {
    id: body.subarray(HEADER, HEADER + idLen).toString('utf8'),
    expiresAt: expiresAt === 0 ? Infinity : expiresAt,
    data: body.subarray(HEADER + idLen),
  };
}
