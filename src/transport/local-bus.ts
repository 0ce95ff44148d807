/**
 * In-process bus with Kafka's semantics: topics are partitioned logs, a key
 * always maps to the same partition, each consumer group keeps its own
 * committed offset per partition and delivers one message of a partition at
 * a time. The embedded default when no KAFKA_BROKERS is set.
 *
 * Retention is bounded by records per partition, by bytes over the whole bus
 * and by age. A record may go once every group with a live subscription on its
 * topic has committed it; groups without a live member hold nothing (if
 * their unread records go, they resume at the oldest retained one and the
 * skipped records are counted in stats().skipped). When a bound is reached and
 * the records that would have to go are still unread by a live group, nothing
 * is dropped: publish waits for the consumers (up to maxBlockMs, in order),
 * then fails with ERR_OVERLOADED (retriable). At-least-once holds and the
 * publisher gets backpressure instead of silent loss.
 */
import { WhaleError } from '../common/errors.js';
import { dlqTopic, DLQ_HEADERS, type Handler, type SubscribeOptions, type Subscription } from './bus.js';
import { assertHandler, deliver, DeliveryAborted, deliveryPolicy, type DeliveryPolicy } from './delivery.js';
import { BaseBus } from './base-bus.js';
import { intOption } from '../common/validate.js';
import { asBuffer, assertRawPublish, assertTopic } from './outgoing.js';
import { PartitionLog, type LogRecord } from './partition-log.js';
import { RoomQueue } from './room-queue.js';

interface Member {
  handler: Handler;
  policy: DeliveryPolicy;
}

interface Group {
  name: string;
  members: Member[];
  /** Next offset to deliver per partition (everything before it is committed). */
  offsets: number[];
  pumping: boolean[];
}

export interface LocalBusOptions {
  /** Partitions per topic (default 4). */
  partitions?: number;
  /** Records kept per partition (default 100,000). */
  retention?: number;
  /** Bytes kept over the whole bus: payloads plus key and header characters (default 64 MiB). */
  maxBytes?: number;
  /** Age after which records no live group still needs are dropped (default 15 min). */
  retentionMs?: number;
  /** How long a publish waits for room before ERR_OVERLOADED (default 5 s; 0 = fail at once). */
  maxBlockMs?: number;
}

export interface LocalBusStats {
  retainedRecords: number;
  retainedBytes: number;
  maxBytes: number;
  /** Publishes refused with ERR_OVERLOADED. */
  rejected: number;
  /** Records groups without a live member never saw because retention removed them first. */
  skipped: number;
}

/** Bookkeeping counted per record on top of its payload, key and headers. */
const RECORD_OVERHEAD = 64;

export class LocalBus extends BaseBus {
  readonly kind = 'local' as const;
  private readonly partitions: number;
  private readonly retention: number;
  private readonly maxBytes: number;
  private readonly retentionMs: number;
  private readonly maxBlockMs: number;
  private readonly room = new RoomQueue();
  private readonly logs = new Map<string, PartitionLog[]>();
  /** topic -> group name -> group: groups are scoped to their topic. */
  private readonly groups = new Map<string, Map<string, Group>>();
  private readonly inFlight = new Set<Promise<void>>();
  private roundRobin = 0;
  private bytes = 0;
  private rejected = 0;
  private skipped = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(o: LocalBusOptions = {}) {
    super('local');
    this.partitions = intOption(o.partitions, 4, 'options.partitions');
    this.retention = intOption(o.retention, 100_000, 'options.retention');
    this.maxBytes = intOption(o.maxBytes, 64 * 2 ** 20, 'options.maxBytes');
    this.retentionMs = intOption(o.retentionMs, 15 * 60_000, 'options.retentionMs');
    this.maxBlockMs = o.maxBlockMs === 0 ? 0 : intOption(o.maxBlockMs, 5_000, 'options.maxBlockMs');
  }

  async publishRaw(
    topic: string,
    data: Buffer,
    opts: { key?: string; headers?: Record<string, string> } = {},
  ): Promise<void> {
    this.assertOpen();
    assertRawPublish(topic, data, opts);
    await this.append(topic, asBuffer(data), opts.key, opts.headers ?? {}, true);
  }

  /**
   * Appends a record once it fits the retention bounds, waiting up to
   * maxBlockMs for consumers to commit. Dead letters do not wait (`mayBlock`
   * false): the consumer that writes them must commit to free room, so they
   * may overshoot maxBytes by the records being dead-lettered.
   */
  private async append(
    topic: string,
    data: Buffer,
    key: string | undefined,
    headers: Record<string, string>,
    mayBlock: boolean,
  ): Promise<void> {
    const logs = this.log(topic);
    const p = key === undefined ? this.roundRobin++ % this.partitions : partitionOf(key, this.partitions);
    const log = logs[p]!;
    const bytes = recordBytes(data, key, headers);
    if (bytes > this.maxBytes) {
      throw new WhaleError(
        'ERR_PAYLOAD_TOO_LARGE',
        `data: a message of ${bytes} bytes cannot fit the bus's retention of ${this.maxBytes} bytes (options.maxBytes)`,
        { field: 'data' },
      );
    }
    const store = () => {
      log.append({ data, key, headers, bytes, at: Date.now() });
      this.bytes += bytes;
      for (const g of this.groups.get(topic)?.values() ?? []) this.kick(topic, g, p);
    };
    // Checking for room and appending happen in one step: nothing else may take the room in between.
    const tryStore = () => this.makeRoom(topic, p, log, bytes) && (store(), true);
    if (!mayBlock) {
      this.makeRoom(topic, p, log, bytes);
      store();
    } else if (this.room.waiting > 0 || !tryStore()) {
      await this.room.wait({
        tryRoom: tryStore,
        maxBlockMs: this.maxBlockMs,
        timeoutError: () => this.overloaded(topic, p, log, bytes),
        closedError: () =>
          this.closed
            ? new WhaleError('ERR_BUS_CLOSED', 'the bus was closed while the publish waited for room')
            : undefined,
      });
    }
    if (!this.closed)
      this.sweeper ??= setInterval(() => this.sweep(), Math.min(30_000, Math.max(10, this.retentionMs / 2))).unref();
  }

  async subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    assertTopic(topic);
    assertHandler(handler);
    const policy = deliveryPolicy(opts);
    const logs = this.log(topic);
    let byName = this.groups.get(topic);
    if (!byName) this.groups.set(topic, (byName = new Map()));
    let g = byName.get(opts.group);
    if (!g) {
      g = {
        name: opts.group,
        members: [],
        offsets: logs.map((l) => (opts.fromBeginning ? l.base : l.end)),
        pumping: logs.map(() => false),
      };
      byName.set(opts.group, g);
    }
    const member: Member = { handler, policy };
    g.members.push(member);
    const group = g;
    for (let p = 0; p < this.partitions; p++) this.kick(topic, group, p);
    return {
      close: async () => {
        group.members = group.members.filter((m) => m !== member);
        this.room.wake(); // a group left without members holds nothing any more
        await Promise.allSettled([...this.inFlight]);
      },
    };
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    clearInterval(this.sweeper);
    this.room.wake();
    await Promise.allSettled([...this.inFlight]);
    this.groups.clear();
  }

  /** Messages currently retained in a topic (all partitions); for tests and inspection. */
  retained(topic: string): Array<{ data: Buffer; key: string | undefined; headers: Record<string, string> }> {
    return (this.logs.get(topic) ?? []).flatMap((l) => l.records());
  }

  stats(): LocalBusStats {
    let records = 0;
    for (const logs of this.logs.values()) for (const l of logs) records += l.size;
    return {
      retainedRecords: records,
      retainedBytes: this.bytes,
      maxBytes: this.maxBytes,
      rejected: this.rejected,
      skipped: this.skipped,
    };
  }

  private log(topic: string): PartitionLog[] {
    assertTopic(topic);
    let l = this.logs.get(topic);
    if (!l) {
      l = Array.from({ length: this.partitions }, () => new PartitionLog());
      this.logs.set(topic, l);
    }
    return l;
  }

  /** First offset of partition p some live group has not committed (Infinity when none holds it). */
  private held(topic: string, p: number): number {
    let min = Infinity;
    for (const g of this.groups.get(topic)?.values() ?? [])
      if (g.members.length > 0 && g.offsets[p]! < min) min = g.offsets[p]!;
    return min;
  }

  private dropOldest(topic: string, p: number, log: PartitionLog): boolean {
    if (log.size === 0 || log.base >= this.held(topic, p)) return false;
    this.bytes -= log.dropOldest()!.bytes;
    return true;
  }

  private expire(topic: string, p: number, log: PartitionLog, now: number): void {
    const before = now - this.retentionMs;
    for (let r = log.oldest(); r !== undefined && r.at <= before && this.dropOldest(topic, p, log); r = log.oldest()) {
      // dropped
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [topic, logs] of this.logs) logs.forEach((log, p) => this.expire(topic, p, log, now));
  }

  /**
   * Drops what may go (expired, then over the record bound, then over the
   * byte budget: this partition's oldest first, then the oldest anywhere)
   * and reports whether `need` more bytes and one more record fit.
   */
  private makeRoom(topic: string, p: number, log: PartitionLog, need: number): boolean {
    this.expire(topic, p, log, Date.now());
    if (log.size >= this.retention && !this.dropOldest(topic, p, log)) return false;
    while (this.bytes + need > this.maxBytes && this.dropOldest(topic, p, log)) {
      // dropped
    }
    while (this.bytes + need > this.maxBytes) {
      let victim: { topic: string; p: number; log: PartitionLog; at: number } | undefined;
      for (const [t, logs] of this.logs) {
        logs.forEach((l, i) => {
          const r = l.oldest();
          if (r && (!victim || r.at < victim.at) && l.base < this.held(t, i))
            victim = { topic: t, p: i, log: l, at: r.at };
        });
      }
      if (!victim) return false;
      while (this.bytes + need > this.maxBytes && this.dropOldest(victim.topic, victim.p, victim.log)) {
        // dropped
      }
    }
    return true;
  }

  private overloaded(topic: string, p: number, log: PartitionLog, need: number): WhaleError {
    this.rejected++;
    const why =
      log.size >= this.retention
        ? `partition ${p} of ${topic} holds ${log.size} records (options.retention)`
        : `the bus holds ${this.bytes} bytes and needs ${need} more, over ${this.maxBytes} (options.maxBytes)`;
    const behind = [...(this.groups.get(topic)?.values() ?? [])].filter(
      (g) => g.members.length > 0 && g.offsets[p]! < log.end,
    );
    const who = behind.length > 0 ? ` (behind on ${topic}: ${behind.map((g) => g.name).join(', ')})` : '';
    return new WhaleError(
      'ERR_OVERLOADED',
      `LocalBus: ${why}; the records that would have to go are still unread by live consumer groups${who} after waiting ${this.maxBlockMs} ms (options.maxBlockMs); retry once they catch up`,
      { retriable: true, topic },
    );
  }

  private kick(topic: string, g: Group, p: number): void {
    if (g.pumping[p] || g.members.length === 0 || this.closed) return;
    g.pumping[p] = true;
    let failed = false;
    // A failure to dead-letter (e.g. the bus is full) leaves the message uncommitted: it is retried shortly.
    const run = this.pump(topic, g, p)
      .catch(() => void (failed = true))
      .finally(() => {
        g.pumping[p] = false;
        this.inFlight.delete(run);
        if (failed && !this.closed) setTimeout(() => this.kick(topic, g, p), 100).unref();
      });
    this.inFlight.add(run);
  }

  private async pump(topic: string, g: Group, p: number): Promise<void> {
    await new Promise((r) => setImmediate(r)); // never deliver inside publish()
    const log = this.logs.get(topic)![p]!;
    while (!this.closed) {
      const member = g.members[p % Math.max(1, g.members.length)];
      if (!member) return;
      if (g.offsets[p]! < log.base) {
        // Retention removed records while the group had no live member.
        this.skipped += log.base - g.offsets[p]!;
        g.offsets[p] = log.base;
      }
      const rec: LogRecord | undefined = log.at(g.offsets[p]!);
      if (!rec) return;
      try {
        await deliver(
          rec.data,
          { topic, partition: p, key: rec.key },
          member.handler,
          member.policy,
          (reason, attempts) =>
            this.append(
              dlqTopic(topic),
              rec.data,
              rec.key,
              { [DLQ_HEADERS.reason]: reason, [DLQ_HEADERS.topic]: topic, [DLQ_HEADERS.attempts]: String(attempts) },
              false,
            ),
          () => this.closed,
        );
      } catch (err) {
        if (err instanceof DeliveryAborted) return; // not committed: redelivered to the next consumer
        throw err;
      }
      g.offsets[p]!++; // commit
      this.room.wake();
    }
  }
}

function recordBytes(data: Uint8Array, key: string | undefined, headers: Record<string, string>): number {
  let n = RECORD_OVERHEAD + data.byteLength + (key?.length ?? 0);
  for (const k in headers) n += k.length + headers[k]!.length;
  return n;
}

/** Stable key -> partition (FNV-1a), so ordering per key holds across restarts. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}
