/**
 * Consumer lag of KafkaBus's subscriptions, from kafkajs's batch events (no
 * extra requests to the cluster): when a batch starts, the lag of its
 * partition is the high watermark minus the batch's first offset; when it is
 * handled, the high watermark minus the offset after its last message. A
 * handler that hangs or keeps failing leaves the lag where the batch started,
 * so it shows. A partition appears once this process fetched from it, and
 * goes when a rebalance gives it to another member of the group.
 */
import type { Consumer } from 'kafkajs';

export interface ConsumerLag {
  /** The Kafka consumer group (KafkaBus scopes groups to their topic: `<group>.<topic>`). */
  group: string;
  topic: string;
  partition: number;
  /** Messages in the partition not yet handled by this group (as of the last batch). */
  lag: number;
}

interface BatchPayload {
  topic: string;
  partition: number;
  batchSize: number;
  offsetLag: string;
  offsetLagLow: string;
}

export class LagTracker {
  private readonly lags = new Map<string, ConsumerLag>();

  /** Follows `consumer`'s batches; returns a function that stops following and forgets its partitions. */
  watch(consumer: Consumer, group: string): () => void {
    const set = (p: BatchPayload, lag: number) => {
      if (!Number.isFinite(lag)) return;
      this.lags.set(`${group}\u0000${p.topic}\u0000${p.partition}`, {
        group,
        topic: p.topic,
        partition: p.partition,
        lag: Math.max(0, lag),
      });
    };
    const offStart = consumer.on(consumer.events.START_BATCH_PROCESS, (e) => {
      const p = e.payload as BatchPayload;
      set(p, p.batchSize > 0 ? Number(p.offsetLagLow) + 1 : Number(p.offsetLag));
    });
    const offEnd = consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const p = e.payload as BatchPayload;
      set(p, Number(p.offsetLag));
    });
    // After a rebalance, partitions now consumed by another member are that member's to report.
    const offJoin = consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment;
      for (const [k, v] of this.lags)
        if (v.group === group && !(assigned[v.topic] ?? []).includes(v.partition)) this.lags.delete(k);
    });
    return () => {
      offStart();
      offEnd();
      offJoin();
      for (const [k, v] of this.lags) if (v.group === group) this.lags.delete(k);
    };
  }

  /** The lag of every partition this process consumes, sorted by group, topic, partition. */
  snapshot(): ConsumerLag[] {
    return [...this.lags.values()].sort((a, b) =>
      a.group === b.group
        ? a.topic === b.topic
          ? a.partition - b.partition
          : a.topic < b.topic
            ? -1
            : 1
        : a.group < b.group
          ? -1
          : 1,
    );
  }
}
