/**
 * In-process bus with Kafka's semantics: topics are partitioned logs (bounded
 * retention), a key always maps to the same partition, each consumer group
 * keeps its own committed offset per partition and delivers one message of a
 * partition at a time. The embedded default when no KAFKA_BROKERS is set.
 */
import { WhaleError } from '../core/base/errors.js';
import { dlqTopic, DLQ_HEADERS, type Handler, type SubscribeOptions, type Subscription } from './bus.js';
import { deliver, DeliveryAborted, deliveryPolicy, type DeliveryPolicy } from './delivery.js';
import { BaseBus } from './base-bus.js';

interface LogRecord {
  data: Buffer;
  key: string | undefined;
  headers: Record<string, string>;
}

interface PartitionLog {
  base: number; // offset of records[0]
  records: LogRecord[];
}

interface Member {
  handler: Handler;
  policy: DeliveryPolicy;
}

interface Group {
  topic: string;
  name: string;
  members: Member[];
  offsets: number[];
  pumping: boolean[];
}

export interface LocalBusOptions {
  /** Partitions per topic (default 4). */
  partitions?: number;
  /** Records kept per partition (default 100,000). */
  retention?: number;
}

export class LocalBus extends BaseBus {
  readonly kind = 'local' as const;
  private readonly partitions: number;
  private readonly retention: number;
  private readonly logs = new Map<string, PartitionLog[]>();
  private readonly groups = new Map<string, Group>();
  private readonly inFlight = new Set<Promise<void>>();
  private roundRobin = 0;

  constructor(o: LocalBusOptions = {}) {
    super('local');
    this.partitions = o.partitions ?? 4;
    this.retention = o.retention ?? 100_000;
  }

  async publishRaw(topic: string, data: Buffer, opts: { key?: string; headers?: Record<string, string> } = {}): Promise<void> {
    this.assertOpen();
    const logs = this.log(topic);
    const p = opts.key === undefined ? this.roundRobin++ % this.partitions : partitionOf(opts.key, this.partitions);
    const log = logs[p]!;
    log.records.push({ data, key: opts.key, headers: opts.headers ?? {} });
    if (log.records.length > this.retention) {
      log.records.shift();
      log.base++;
    }
    for (const g of this.groups.values()) if (g.topic === topic) this.kick(g, p);
  }

  async subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const policy = deliveryPolicy(opts);
    const logs = this.log(topic);
    const id = `${topic}\u0000${opts.group}`;
    let g = this.groups.get(id);
    if (!g) {
      g = {
        topic,
        name: opts.group,
        members: [],
        offsets: logs.map((l) => (opts.fromBeginning ? l.base : l.base + l.records.length)),
        pumping: logs.map(() => false),
      };
      this.groups.set(id, g);
    }
    const member: Member = { handler, policy };
    g.members.push(member);
    const group = g;
    for (let p = 0; p < this.partitions; p++) this.kick(group, p);
    return {
      close: async () => {
        group.members = group.members.filter((m) => m !== member);
        await Promise.allSettled([...this.inFlight]);
      },
    };
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    await Promise.allSettled([...this.inFlight]);
    this.groups.clear();
  }

  /** Messages currently retained in a topic (all partitions); for tests and inspection. */
  retained(topic: string): Array<{ data: Buffer; key: string | undefined; headers: Record<string, string> }> {
    return (this.logs.get(topic) ?? []).flatMap((l) => l.records);
  }

  private log(topic: string): PartitionLog[] {
    if (typeof topic !== 'string' || topic.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'topic: must be a non-empty string', { field: 'topic' });
    let l = this.logs.get(topic);
    if (!l) {
      l = Array.from({ length: this.partitions }, () => ({ base: 0, records: [] }));
      this.logs.set(topic, l);
    }
    return l;
  }

  private kick(g: Group, p: number): void {
    if (g.pumping[p] || g.members.length === 0 || this.closed) return;
    g.pumping[p] = true;
    // A failure to dead-letter leaves the message uncommitted: the next kick retries it.
    const run = this.pump(g, p).catch(() => undefined).finally(() => {
      g.pumping[p] = false;
      this.inFlight.delete(run);
    });
    this.inFlight.add(run);
  }

  private async pump(g: Group, p: number): Promise<void> {
    await new Promise((r) => setImmediate(r)); // never deliver inside publish()
    const log = this.logs.get(g.topic)![p]!;
    while (!this.closed) {
      const member = g.members[p % Math.max(1, g.members.length)];
      if (!member) return;
      if (g.offsets[p]! < log.base) g.offsets[p] = log.base; // retention passed us by
      const i = g.offsets[p]! - log.base;
      const rec = log.records[i];
      if (!rec) return;
      try {
        await deliver(rec.data, { topic: g.topic, partition: p, key: rec.key }, member.handler, member.policy, (reason, attempts) =>
          this.publishRaw(dlqTopic(g.topic), rec.data, {
            ...(rec.key === undefined ? {} : { key: rec.key }),
            headers: { [DLQ_HEADERS.reason]: reason, [DLQ_HEADERS.topic]: g.topic, [DLQ_HEADERS.attempts]: String(attempts) },
          }),
        () => this.closed);
      } catch (err) {
        if (err instanceof DeliveryAborted) return; // not committed: redelivered to the next consumer
        throw err;
      }
      g.offsets[p]!++; // commit
    }
  }

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
