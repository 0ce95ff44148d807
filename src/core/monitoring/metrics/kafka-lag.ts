/**
 * `whale_kafka_consumer_lag{group,topic,partition}`: messages not yet handled
 * by each consumer group of this node, per partition, read at scrape time
 * from KafkaBus.consumerLag() (src/transport/kafka-lag.ts: kafkajs's batch
 * events, no extra requests to the cluster). Empty on the in-process bus.
 */
import { Gauge } from 'prom-client';

import type { Bus } from '../../../transport/bus.js';
import type { ConsumerLag } from '../../../transport/kafka-lag.js';
import type { WhaleMetrics } from './whale-metrics.js';

export const CONSUMER_LAG_METRIC = 'whale_kafka_consumer_lag';

interface LagSource {
  consumerLag(): ConsumerLag[];
}

function hasLag(bus: Bus): bus is Bus & LagSource {
  return typeof (bus as Partial<LagSource>).consumerLag === 'function';
}

/** Registers the gauge on `metrics`; `bus` is read at each scrape (the messaging service may swap its bus on restart). */
export function registerConsumerLagCollector(
  metrics: WhaleMetrics,
  bus: () => Bus,
): Gauge<'group' | 'topic' | 'partition'> {
  return new Gauge({
    name: CONSUMER_LAG_METRIC,
    help: "Messages in a partition not yet handled by this node's consumer group (high watermark minus the next offset to handle, as of the last fetched batch)",
    labelNames: ['group', 'topic', 'partition'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      const b = bus();
      if (!hasLag(b)) return;
      for (const l of b.consumerLag())
        this.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
    },
  });
}
