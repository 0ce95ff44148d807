/**
 * Bus bench: messages/s (publish -> handled, 1 KB payloads, 100 in flight)
 * and request/reply round-trip latency p50/p99, for LocalBus and for KafkaBus
 * against librdkafka's mock cluster on loopback (3 brokers, 3 partitions).
 */
import { silentLogger } from '../src/common/logger.js';
import type { Bus } from '../src/transport/bus.js';
import { createEnvelope } from '../src/transport/envelope.js';
import { KafkaBus } from '../src/transport/kafka-bus.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { KafkaMock } from '../test/support/kafka-mock.js';
import { fmt, median, percentile, table } from './stats.js';

const PAYLOAD = 'x'.repeat(1024);

async function throughput(bus: Bus, topic: string, count: number): Promise<number> {
  let got = 0;
  const sub = await bus.subscribe(topic, () => void got++, { group: `tp-${topic}` });
  const t0 = performance.now();
  for (let i = 0; i < count; i += 100) {
    const batch: Array<Promise<void>> = [];
    for (let j = i; j < Math.min(count, i + 100); j++) {
      batch.push(
        bus.publish(topic, createEnvelope({ type: 'bench', source: 'bench', payload: { i: j, data: PAYLOAD } }), {
          key: `k${j % 16}`,
        }),
      );
    }
    await Promise.all(batch);
  }
  while (got < count) await new Promise((r) => setTimeout(r, 1));
  const s = (performance.now() - t0) / 1e3;
  await sub.close();
  return count / s;
}

async function roundTrips(bus: Bus, topic: string, count: number): Promise<number[]> {
  const server = await bus.subscribe(
    topic,
    (req) => bus.reply(req, createEnvelope({ type: 'pong', source: 'bench', payload: req.payload })),
    { group: `rt-${topic}` },
  );
  await bus.request(topic, createEnvelope({ type: 'ping', source: 'bench', payload: PAYLOAD }), { timeoutMs: 30_000 }); // warm-up
  const lat: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await bus.request(topic, createEnvelope({ type: 'ping', source: 'bench', payload: PAYLOAD }), {
      timeoutMs: 30_000,
    });
    lat.push(performance.now() - t0);
  }
  await server.close();
  return lat.sort((a, b) => a - b);
}

/**
 * LocalBus publish rate into one partition already holding `retained`
 * records (nobody subscribed), `count` more published 100 at a time. At the
 * record bound (100,000 per partition by default) every publish also trims
 * the oldest record; a flat rate means neither costs O(retained).
 */
async function publishRate(retained: number, count: number): Promise<number> {
  const bus = new LocalBus({ partitions: 1, maxBytes: 2 ** 30 });
  const e = () => createEnvelope({ type: 'bench', source: 'bench', payload: { data: PAYLOAD } });
  for (let i = 0; i < retained; i += 1000)
    await Promise.all(
      Array.from({ length: Math.min(1000, retained - i) }, () => bus.publish('bench.fill', e(), { key: 'k' })),
    );
  const t0 = performance.now();
  for (let i = 0; i < count; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, () => bus.publish('bench.fill', e(), { key: 'k' })),
    );
  const rate = count / ((performance.now() - t0) / 1e3);
  await bus.close();
  return rate;
}

export async function benchBus(opts: { runs: number; quick: boolean }): Promise<{ text: string }> {
  const count = opts.quick ? 2000 : 10_000;
  const trips = opts.quick ? 200 : 1000;
  const runs = Math.min(opts.runs, 3);
  const rows: string[][] = [];
  const topics: Array<[string, number]> = [];
  for (let r = 0; r < runs; r++) topics.push([`bench.tp.${r}`, 3], [`bench.rt.${r}`, 3]);
  const mock = await KafkaMock.start(topics);
  try {
    for (const kind of ['local', 'kafka'] as const) {
      const bus: Bus =
        kind === 'local'
          ? new LocalBus()
          : new KafkaBus({ brokers: mock.brokers, idempotent: false, logger: silentLogger });
      const rates: number[] = [];
      const p50: number[] = [];
      const p99: number[] = [];
      for (let r = 0; r < runs; r++) {
        rates.push(await throughput(bus, `bench.tp.${r}`, count));
        const lat = await roundTrips(bus, `bench.rt.${r}`, trips);
        p50.push(percentile(lat, 0.5));
        p99.push(percentile(lat, 0.99));
      }
      await bus.close();
      rows.push([
        kind === 'local' ? 'LocalBus' : 'KafkaBus (mock cluster)',
        fmt(median(rates), 0),
        fmt(median(p50), 3),
        fmt(median(p99), 3),
      ]);
    }
  } finally {
    await mock.stop();
  }
  const fillRows: string[][] = [];
  const publishes = opts.quick ? 10_000 : 50_000;
  for (const retained of [0, 100_000]) {
    const rates: number[] = [];
    for (let r = 0; r < runs; r++) rates.push(await publishRate(retained, publishes));
    fillRows.push([retained.toLocaleString('en-US'), fmt(median(rates), 0)]);
  }
  return {
    text: [
      table(['bus', 'msgs/s', 'RTT p50 ms', 'RTT p99 ms'], rows),
      '',
      `msgs/s: ${count} messages of 1 KB, 100 in flight, publish until every one was handled; RTT: ${trips} sequential request/reply.`,
      `Medians over ${runs} runs. KafkaBus: acks=all, one request in flight (the mock cluster cannot do idempotence), manual commit per message.`,
      '',
      table(['LocalBus records already retained in the partition', 'publish msgs/s'], fillRows),
      '',
      `${publishes} publishes of 1 KB into one partition (100 in flight, no subscriber), after filling it; at 100,000 (the default record bound) each publish also trims the oldest record. Medians over ${runs} runs.`,
    ].join('\n'),
  };
}
