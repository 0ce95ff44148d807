/**
 * KnowledgeManager: keeps the knowledge models share and finds what is close
 * to a question. Items carry their metadata (source, topic, time, version,
 * privacy, TTL) and, when they have an embedding (or text and an embedder),
 * a vector in the native index. Every change is on disk (knowledge-log.ts)
 * and/or in Redis before the call resolves, and a restart replays it into the
 * same index. Changes are applied one at a time, in call order.
 */
import { join } from 'node:path';

import { WhaleError } from '../../../common/errors.js';
import { silentLogger, type Logger } from '../../../common/logger.js';
import { decodeTensor, encodeTensor } from '../../memory/codec.js';
import { defaultCacheDir } from '../../memory/disk-dir.js';
import { visibleTo, type CanRead } from './access.js';
import { checkInput, embeddingBlob, type CheckedInput, type VectorFormat } from './item-input.js';
import { KnowledgeLog } from './knowledge-log.js';
import type { StoredRecord } from './record-codec.js';
import { RedisKnowledgeStore } from './redis-store.js';
import type {
  KnowledgeFilter,
  KnowledgeHit,
  KnowledgeInput,
  KnowledgeItem,
  KnowledgeSearch,
  RecoveryReport,
} from './types.js';
import { NO_LABEL, VectorIndex, type VectorMetric, type VectorStorage } from './vector-index.js';

export interface KnowledgeManagerOptions {
  /** Embedding dimension. */
  dim: number;
  metric?: VectorMetric;
  /** 'int8' (default) keeps vectors in the memory module's int8 format, searched without decoding. */
  storage?: VectorStorage;
  blockSize?: number;
  /** Approximate search once the collection is large: inverted lists trained when `trainAt` items have vectors. */
  ann?: { nlist: number; nprobe?: number; trainAt?: number; seed?: number };
  /** Log directory; default <cache dir>/knowledge; false: no disk. */
  dir?: string | false;
  /** Redis for the items (a mirror of the disk, or the store of record with dir: false). */
  redis?: { url: string; prefix?: string };
  /** Embeds texts (e.g. a model served by the hosting layer) for items and searches given as text. */
  embed?: (texts: string[]) => Promise<Float32Array[]>;
  /** An extra read rule; it can only narrow the built-in one (access.ts). */
  canRead?: CanRead;
  now?: () => number;
  logger?: Logger;
}

export type ForgetWhat = { id: string } | { key: string; sourceModel?: string } | { sourceModel: string };

interface Entry {
  item: KnowledgeItem;
  blob?: Uint8Array;
  label?: number;
}

const scoped = (key: string, sourceModel: string | undefined) => `${sourceModel ?? ''}\u0000${key}`;

export class KnowledgeManager {
  /** What the last open found in storage that it could not use. */
  recovery: RecoveryReport = { items: 0, damaged: [], tornTailBytes: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly byKey = new Map<string, string>();
  private readonly byLabel = new Map<number, string>();
  private readonly freeLabels: number[] = [];
  private nextLabel = 0;
  private readonly index: VectorIndex;
  private readonly fmt: VectorFormat;
  private readonly now: () => number;
  private readonly logger: Logger;
  private log: KnowledgeLog | undefined;
  private redis: RedisKnowledgeStore | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private liveBytes = 0;
  private redisErrors = 0;
  private closed = false;

  private constructor(private readonly o: KnowledgeManagerOptions) {
    if (typeof o !== 'object' || o === null)
      throw new WhaleError('ERR_INVALID_OPTION', 'options: expected an object', { field: 'options' });
    const ann = o.ann;
    if (ann !== undefined && (typeof ann !== 'object' || !Number.isInteger(ann.nlist) || ann.nlist < 1)) {
      throw new WhaleError('ERR_INVALID_OPTION', 'options.ann.nlist: must be an integer >= 1', {
        field: 'options.ann.nlist',
      });
    }
    this.index = new VectorIndex({
      dim: o.dim,
      metric: o.metric ?? 'cosine',
      storage: o.storage ?? 'int8',
      blockSize: o.blockSize ?? 64,
      nlist: ann?.nlist ?? 0,
      ...(ann?.nprobe === undefined ? {} : { nprobe: ann.nprobe }),
    });
    this.fmt = {
      dim: o.dim,
      storage: this.index.storage,
      blockSize: o.blockSize ?? 64,
      cosine: this.index.metric === 'cosine',
    };
    this.now = o.now ?? Date.now;
    this.logger = o.logger ?? silentLogger;
  }

  /** Opens the storage and rebuilds the index from it. */
  static async open(o: KnowledgeManagerOptions): Promise<KnowledgeManager> {
    const m = new KnowledgeManager(o);
    await m.load();
    return m;
  }

  private async load(): Promise<void> {
    const dir = this.o.dir === undefined ? join(defaultCacheDir(), 'knowledge') : this.o.dir;
    let records: StoredRecord[] = [];
    if (this.o.redis) {
      this.redis = new RedisKnowledgeStore(this.o.redis);
      await this.redis.connect();
    }
    if (dir !== false) {
      const { log, replay } = await KnowledgeLog.open(dir);
      this.log = log;
      records = replay.records;
      this.recovery.damaged.push(...replay.damaged);
      this.recovery.tornTailBytes = replay.tornTailBytes;
    } else if (this.redis) {
      const r = await this.redis.load();
      records = r.records;
      this.recovery.damaged.push(...r.damaged);
    }
    const now = this.now();
    const live = new Map<string, Entry>();
    let train: { nlist: number; blob: Uint8Array } | undefined;
    for (const r of records) {
      if (r.kind === 'train') train = r;
      else if (r.kind === 'delete') r.ids.forEach((id) => live.delete(id));
      else if (r.item.expiresAt === undefined || r.item.expiresAt > now)
        live.set(r.item.id, r.blob ? { item: r.item, blob: r.blob } : { item: r.item });
      else live.delete(r.item.id);
    }
    if (train) await this.restoreCentroids(train, dir === false ? 'redis' : 'disk');
    for (const e of live.values()) {
      try {
        this.apply(e);
      } catch (err) {
        const w = err as WhaleError;
        this.recovery.damaged.push({
          source: dir === false ? 'redis' : 'disk',
          where: `item ${e.item.id}`,
          id: e.item.id,
          code: w.code ?? 'ERR_CORRUPT',
          reason: w.message,
        });
      }
    }
    this.recovery.items = this.entries.size;
    for (const d of this.recovery.damaged) this.logger.warn('knowledge: damaged record skipped', { ...d });
    await this.maybeTrain();
  }

  /** Stores items (all checked first, then written and acknowledged together). */
  async store(input: KnowledgeInput): Promise<KnowledgeItem>;
  async store(input: KnowledgeInput[]): Promise<KnowledgeItem[]>;
  async store(input: KnowledgeInput | KnowledgeInput[]): Promise<KnowledgeItem | KnowledgeItem[]> {
    const list = Array.isArray(input) ? input : [input];
    const now = this.now();
    const checked = list.map((x, i) => checkInput(x, i, this.fmt, now));
    await this.embedTexts(checked);
    const out = await this.serial(() => this.commit(checked));
    return Array.isArray(input) ? out : out[0]!;
  }

  /** The item by id, or the current version under a key (scoped by source model); undefined if unseen by `as`. */
  get(
    what: { id: string } | { key: string; sourceModel?: string },
    o: { as?: string } = {},
  ): KnowledgeItem | undefined {
    const id = 'id' in what ? what.id : this.byKey.get(scoped(what.key, what.sourceModel));
    const e = id === undefined ? undefined : this.entries.get(id);
    return e && this.readable(e.item, o.as) ? { ...e.item } : undefined;
  }

  /** Items matching the filter that `as` may read, newest first. */
  list(o: { filter?: KnowledgeFilter; as?: string; limit?: number } = {}): KnowledgeItem[] {
    const match = this.matcher(o.filter, o.as);
    const items = [...this.entries.values()].map((e) => e.item).filter(match);
    items.sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : 1));
    return items.slice(0, o.limit ?? items.length).map((i) => ({ ...i }));
  }

  /** The k items closest to a vector (or a text, through the embedder) among those the filter and access rules allow. */
  async search(q: KnowledgeSearch): Promise<KnowledgeHit[]> {
    const k = q.k ?? 10;
    if (!Number.isInteger(k) || k < 1 || k > 4096)
      throw new WhaleError('ERR_INVALID_ARG', `k: must be an integer in [1, 4096], got ${String(q.k)}`, { field: 'k' });
    let vector = q.vector;
    if (vector === undefined) {
      if (typeof q.text !== 'string')
        throw new WhaleError('ERR_INVALID_ARG', 'vector: give a vector or a text', { field: 'vector' });
      vector = (await this.embedAll([q.text]))[0]!;
    }
    const bad = (field: string, what: string, code: 'ERR_INVALID_ARG' | 'ERR_NON_FINITE' = 'ERR_INVALID_ARG') =>
      new WhaleError(code, `${field.replace('embedding', 'vector')}: ${what}`, { field: 'vector' });
    if (!(vector instanceof Float32Array) && !Array.isArray(vector))
      throw bad('vector', 'must be a Float32Array or an array of numbers');
    embeddingBlob(vector, { ...this.fmt, storage: 'f32' }, bad); // same checks as an item's embedding
    const query = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    const match = this.matcher(q.filter, q.as);
    const allow = new Uint8Array((this.nextLabel >> 3) + 1);
    let allowed = 0;
    for (const [label, id] of this.byLabel) {
      if (match(this.entries.get(id)!.item)) {
        allow[label >> 3]! |= 1 << (label & 7);
        allowed++;
      }
    }
    if (allowed === 0) return [];
    const r = await this.index.search(query, {
      k,
      allow,
      ...(q.nprobe === undefined ? {} : { nprobe: q.nprobe }),
      ...(q.exact === undefined ? {} : { exact: q.exact }),
    });
    const hits: KnowledgeHit[] = [];
    for (let i = 0; i < k; i++) {
      const label = r.labels[i]!;
      const id = label === NO_LABEL ? undefined : this.byLabel.get(label);
      const e = id === undefined ? undefined : this.entries.get(id);
      if (e) hits.push({ item: { ...e.item }, distance: r.distances[i]! });
    }
    return hits;
  }

  /** Removes an item, the current item under a key, or everything a model shared; returns how many. */
  async forget(what: ForgetWhat): Promise<number> {
    if (typeof what !== 'object' || what === null)
      throw new WhaleError('ERR_INVALID_ARG', 'what: expected { id }, { key } or { sourceModel }', { field: 'what' });
    return this.serial(async () => {
      let ids: string[];
      if ('id' in what) ids = this.entries.has(what.id) ? [what.id] : [];
      else if ('key' in what)
        ids = [this.byKey.get(scoped(what.key, what.sourceModel))].filter((x): x is string => x !== undefined);
      else
        ids = [...this.entries.values()].filter((e) => e.item.sourceModel === what.sourceModel).map((e) => e.item.id);
      return this.remove(ids);
    });
  }

  /**
   * Drops expired items (they are never returned, but stay in memory until dropped), then, beyond
   * `keep` items, the oldest of `topic` (every topic when absent); returns how many went.
   */
  async prune(o: { keep?: number; topic?: string } = {}): Promise<number> {
    return this.serial(async () => {
      const now = this.now();
      const gone = new Set<string>();
      for (const e of this.entries.values())
        if (e.item.expiresAt !== undefined && e.item.expiresAt <= now) gone.add(e.item.id);
      const over = o.keep === undefined ? 0 : this.entries.size - gone.size - o.keep;
      if (over > 0) {
        const candidates = [...this.entries.values()]
          .map((e) => e.item)
          .filter((i) => !gone.has(i.id) && (o.topic === undefined || i.topic === o.topic))
          .sort((a, b) => a.time - b.time || a.storedAt - b.storedAt);
        for (const i of candidates.slice(0, over)) gone.add(i.id);
      }
      return this.remove([...gone]);
    });
  }

  private async remove(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    await this.persist([{ kind: 'delete', ids }], [], ids);
    for (const id of ids) this.drop(id);
    return ids.length;
  }

  stats(): { items: number; vectors: number; trained: boolean; memoryBytes: number; redisErrors: number } {
    return {
      items: this.entries.size,
      vectors: this.byLabel.size,
      trained: this.index.trained,
      memoryBytes: this.index.memoryBytes,
      redisErrors: this.redisErrors,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    await this.log?.close();
    await this.redis?.close();
  }

  private readable(item: KnowledgeItem, as: string | undefined): boolean {
    return (item.expiresAt === undefined || item.expiresAt > this.now()) && visibleTo(item, as, this.o.canRead);
  }

  private matcher(f: KnowledgeFilter | undefined, as: string | undefined): (item: KnowledgeItem) => boolean {
    if (f !== undefined && (typeof f !== 'object' || f === null))
      throw new WhaleError('ERR_INVALID_ARG', 'filter: must be an object', { field: 'filter' });
    const topics = f?.topic === undefined ? undefined : new Set(typeof f.topic === 'string' ? [f.topic] : f.topic);
    if (f?.since !== undefined && !Number.isFinite(f.since))
      throw new WhaleError('ERR_INVALID_ARG', 'filter.since: must be a finite number of ms', { field: 'filter.since' });
    return (item) =>
      (!topics || topics.has(item.topic)) &&
      (f?.sourceModel === undefined || item.sourceModel === f.sourceModel) &&
      (f?.since === undefined || item.time >= f.since) &&
      this.readable(item, as);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new WhaleError('ERR_INVALID_STATE', 'the knowledge manager is closed'));
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async embedTexts(checked: CheckedInput[]): Promise<void> {
    const todo = checked.filter((c) => c.blob === undefined && c.text !== undefined);
    if (todo.length === 0 || !this.o.embed) return;
    const vectors = await this.embedAll(todo.map((c) => c.text!));
    todo.forEach((c, i) => {
      const bad = (field: string, what: string, code: 'ERR_INVALID_ARG' | 'ERR_NON_FINITE' = 'ERR_INVALID_ARG') =>
        new WhaleError(code, `embedder: ${field} of item ${JSON.stringify(c.id)}: ${what}`, {
          field: 'embed',
          item: c.id,
        });
      c.blob = embeddingBlob(vectors[i], this.fmt, bad);
    });
  }

  private async embedAll(texts: string[]): Promise<Float32Array[]> {
    if (!this.o.embed)
      throw new WhaleError('ERR_INVALID_STATE', 'text: no embedder configured (options.embed)', { field: 'text' });
    const out = await this.o.embed(texts);
    if (!Array.isArray(out) || out.length !== texts.length)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `embedder: returned ${Array.isArray(out) ? out.length : 'no'} vectors for ${texts.length} texts`,
        { field: 'embed' },
      );
    return out;
  }

  private async commit(checked: CheckedInput[]): Promise<KnowledgeItem[]> {
    const storedAt = this.now();
    const records: StoredRecord[] = [];
    const puts: Entry[] = [];
    const superseded: string[] = [];
    const result: KnowledgeItem[] = [];
    const current = new Map<string, KnowledgeItem>(); // scoped key -> newest in this batch
    for (const c of checked) {
      const sk = scoped(c.key, c.sourceModel);
      const prevId = current.get(sk)?.id ?? this.byKey.get(sk);
      const prev = current.get(sk) ?? (prevId === undefined ? undefined : this.entries.get(prevId)?.item);
      if (prev && c.version !== undefined && c.version < prev.version) {
        result.push({ ...prev }); // older than what is kept: superseded already
        continue;
      }
      const version = c.version ?? (prev ? (prev.id === c.id ? prev.version : prev.version + 1) : 1);
      const item: KnowledgeItem = {
        id: c.id,
        key: c.key,
        version,
        topic: c.topic,
        targetModel: c.targetModel,
        privacy: c.privacy,
        data: c.data,
        time: c.time,
        storedAt,
        hasVector: c.blob !== undefined,
      };
      if (c.sourceModel !== undefined) item.sourceModel = c.sourceModel;
      if (c.expiresAt !== undefined) item.expiresAt = c.expiresAt;
      if (prev && prev.id !== c.id) superseded.push(prev.id);
      current.set(sk, item);
      const e: Entry = c.blob ? { item, blob: c.blob } : { item };
      puts.push(e);
      records.push(c.blob ? { kind: 'put', item, blob: c.blob } : { kind: 'put', item });
      result.push({ ...item });
    }
    if (superseded.length > 0) records.push({ kind: 'delete', ids: superseded });
    const gone = new Set(superseded);
    const kept = puts.filter((e) => !gone.has(e.item.id)); // a later item of this batch superseded it
    await this.persist(records, kept, superseded);
    for (const id of superseded) this.drop(id);
    for (const e of kept) this.apply(e);
    await this.maybeTrain();
    await this.maybeCompact();
    return result;
  }

  /** Writes to the store of record (awaited, errors fail the call) and mirrors to Redis. */
  private async persist(records: StoredRecord[], puts: Entry[], deletes: string[]): Promise<void> {
    if (records.length === 0) return;
    const toRedis = async () => {
      if (!this.redis) return;
      if (deletes.length > 0) await this.redis.delete(deletes);
      if (puts.length > 0) await this.redis.put(puts);
    };
    if (this.log) {
      await this.log.append(records);
      for (const r of records)
        if (r.kind === 'put') this.liveBytes += 24 + JSON.stringify(r.item).length + (r.blob?.length ?? 0);
      try {
        await toRedis();
      } catch (err) {
        this.redisErrors++;
        this.logger.warn('knowledge: redis mirror write failed (the disk log has the change)', {
          error: (err as Error).message,
        });
      }
    } else {
      await toRedis();
    }
  }

  /** Puts an item in memory and the index (replacing one with the same id). */
  private apply(e: Entry): void {
    const old = this.entries.get(e.item.id);
    let label = old?.label;
    if (e.blob) {
      label ??= this.freeLabels.pop() ?? this.nextLabel++;
      this.index.addBlobs(Uint32Array.of(label), [e.blob]);
      this.byLabel.set(label, e.item.id);
    } else if (label !== undefined) {
      this.index.remove(Uint32Array.of(label));
      this.byLabel.delete(label);
      this.freeLabels.push(label);
      label = undefined;
    }
    this.entries.set(e.item.id, label === undefined ? { ...e } : { ...e, label });
    this.byKey.set(scoped(e.item.key, e.item.sourceModel), e.item.id);
  }

  private drop(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    const sk = scoped(e.item.key, e.item.sourceModel);
    if (this.byKey.get(sk) === id) this.byKey.delete(sk);
    if (e.label !== undefined) {
      this.index.remove(Uint32Array.of(e.label));
      this.byLabel.delete(e.label);
      this.freeLabels.push(e.label);
    }
  }

  private async maybeTrain(): Promise<void> {
    const ann = this.o.ann;
    if (!ann || this.index.trained) return;
    if (this.byLabel.size < (ann.trainAt ?? 39 * ann.nlist)) return;
    await this.index.train({ seed: ann.seed ?? 1 });
    // The centroids are stored, so a restart puts every item in the same list.
    const blob = encodeTensor(this.index.centroids(), { codec: 'f32' });
    if (this.log) await this.log.append([{ kind: 'train', nlist: ann.nlist, blob }]);
    try {
      await this.redis?.putTrain(ann.nlist, blob);
    } catch (err) {
      if (!this.log) throw err;
      this.redisErrors++;
    }
  }

  private async restoreCentroids(t: { nlist: number; blob: Uint8Array }, source: 'disk' | 'redis'): Promise<void> {
    try {
      if (t.nlist !== this.index.nlist)
        throw new WhaleError(
          'ERR_CORRUPT',
          `saved centroids are for ${t.nlist} lists, the index has ${this.index.nlist}`,
        );
      await this.index.train({ samples: decodeTensor(t.blob), iterations: 0 });
    } catch (err) {
      const w = err as WhaleError;
      this.recovery.damaged.push({
        source,
        where: 'centroids',
        code: w.code ?? 'ERR_CORRUPT',
        reason: `${w.message} (the lists are trained again)`,
      });
    }
  }

  private async maybeCompact(): Promise<void> {
    if (!this.log || this.log.size < Math.max(1 << 20, 2 * this.liveBytes)) return;
    const live: StoredRecord[] = [...this.entries.values()].map((e) =>
      e.blob ? { kind: 'put', item: e.item, blob: e.blob } : { kind: 'put', item: e.item },
    );
    if (this.index.trained)
      live.unshift({
        kind: 'train',
        nlist: this.index.nlist,
        blob: encodeTensor(this.index.centroids(), { codec: 'f32' }),
      });
    await this.log.compact(live);
    this.liveBytes = this.log.size;
  }
}
