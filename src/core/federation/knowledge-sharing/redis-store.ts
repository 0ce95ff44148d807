/**
 * Knowledge in Redis (when configured): each item under `<prefix>:item:<id>`
 * as the same checksummed record the disk log writes (expiring with the item's
 * TTL), and the ids in the set `<prefix>:ids`. Writes are one MULTI per batch.
 * At load, values that fail their checksum are skipped and reported, and ids
 * whose item expired are dropped from the set.
 */

import { WhaleError } from '../../../common/errors.js';
import { connectRedis, type Redis } from '../../../transport/redis.js';
import { encodeRecord, parseRecord, type StoredRecord } from './record-codec.js';
import type { DamagedRecord, KnowledgeItem } from './types.js';

export interface RedisKnowledgeOptions {
  url: string;
  /** Key prefix; default 'whale:knowledge'. */
  prefix?: string;
  commandTimeoutMs?: number;
}

export class RedisKnowledgeStore {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(o: RedisKnowledgeOptions) {
    this.prefix = o.prefix ?? 'whale:knowledge';
    // Errors are surfaced by the failing command instead.
    this.client = connectRedis(
      o.url,
      'knowledge',
      o.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: o.commandTimeoutMs },
    );
  }

  private itemKey(id: string): string {
    return `${this.prefix}:item:${id}`;
  }

  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      throw new WhaleError('ERR_INVALID_OPTION', `options.redis.url: cannot connect: ${(err as Error).message}`, {
        field: 'options.redis.url',
        cause: err,
        retriable: true,
      });
    }
  }

  async put(items: Array<{ item: KnowledgeItem; blob?: Uint8Array }>): Promise<void> {
    const m = this.client.multi();
    for (const { item, blob } of items) {
      const value = encodeRecord(blob ? { kind: 'put', item, blob } : { kind: 'put', item });
      if (item.expiresAt !== undefined)
        m.set(this.itemKey(item.id), value, 'PX', Math.max(1, item.expiresAt - Date.now()));
      else m.set(this.itemKey(item.id), value);
      m.sadd(`${this.prefix}:ids`, item.id);
    }
    await this.exec(m);
  }

  async delete(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const m = this.client.multi();
    m.del(...ids.map((id) => this.itemKey(id)));
    m.srem(`${this.prefix}:ids`, ...ids);
    await this.exec(m);
  }

  /** The centroids of the inverted lists, once trained. */
  async putTrain(nlist: number, blob: Uint8Array): Promise<void> {
    await this.client.set(`${this.prefix}:centroids`, encodeRecord({ kind: 'train', nlist, blob }));
  }

  /** The centroids (first) and every stored item, in id order; damaged values are reported, not thrown. */
  async load(): Promise<{ records: StoredRecord[]; damaged: DamagedRecord[] }> {
    const ids = (await this.client.smembers(`${this.prefix}:ids`)).sort();
    const records: StoredRecord[] = [];
    const damaged: DamagedRecord[] = [];
    const train = await this.client.getBuffer(`${this.prefix}:centroids`);
    if (train) {
      const r = parseRecord(train, 0);
      if (r.ok && r.record.kind === 'train') records.push(r.record);
      else
        damaged.push({
          source: 'redis',
          where: `${this.prefix}:centroids`,
          code: r.ok ? 'ERR_CORRUPT' : r.code,
          reason: r.ok ? 'not a train record' : r.reason,
        });
    }
    const gone: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const values = await this.client.mgetBuffer(...chunk.map((id) => this.itemKey(id)));
      chunk.forEach((id, j) => {
        const v = values[j];
        if (!v) return void gone.push(id);
        const r = parseRecord(v, 0);
        if (r.ok && r.record.kind === 'put' && r.record.item.id === id && r.size === v.length) records.push(r.record);
        else
          damaged.push({
            source: 'redis',
            where: this.itemKey(id),
            id,
            code: r.ok ? 'ERR_CORRUPT' : r.code,
            reason: r.ok ? 'value is not this item' : r.reason,
          });
      });
    }
    if (gone.length > 0) await this.client.srem(`${this.prefix}:ids`, ...gone);
    return { records, damaged };
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private async exec(m: ReturnType<Redis['multi']>): Promise<void> {
    let res: Array<[Error | null, unknown]> | null;
    try {
      res = await m.exec();
    } catch (err) {
      throw new WhaleError('ERR_INVALID_STATE', `redis write failed: ${(err as Error).message}`, {
        cause: err,
        retriable: true,
      });
    }
    const failed = res?.find(([e]) => e !== null)?.[0];
    if (!res || failed)
      throw new WhaleError('ERR_INVALID_STATE', `redis write failed: ${failed?.message ?? 'transaction aborted'}`, {
        retriable: true,
      });
  }
}
