/** `whale topics`: list, describe and create the Kafka topics (src/transport/kafka-admin.ts). */
import { parseArgs } from 'node:util';

import { isWhaleError, WhaleError } from '../common/errors.js';
import { parseList } from '../common/env.js';
import { loadConfig } from '../config/whale-config.js';
import { KafkaTopicAdmin, topicPlan, type TopicInfo, type TopicPlan } from '../transport/kafka-admin.js';
import { TopicManager } from '../transport/topic-manager.js';
import type { CliIO } from './main.js';

export const TOPICS_USAGE = `Usage: whale topics list [--all] [--json]
       whale topics describe [TOPIC...] [--group GROUP] [--json]
       whale topics create [TOPIC...] [--dry-run]

Smart Whale's Kafka topics: the bus channels (whale.*), each configured model's own
topic (whale.models.<model>.collaboration) and their .dlq twins, with the
partitions, replication factor and retention of whale.config.json's kafka.topics
(docs/configuration.md, "Kafka"). The cluster, TLS and SASL come from the same
configuration and the KAFKA_* variables; 'whale start' creates missing topics itself
(kafka.topics.provision).
  list       topics on the cluster (Smart Whale's; --all: every topic), '*' marks a missing one
  describe   partitions (leader, replicas, in-sync), messages, retention and what differs
             from the configuration; default: Smart Whale's topics that exist. --group GROUP:
             also that consumer group's committed offset and lag per partition (the Kafka group
             id; Smart Whale's are <group>.<topic>, e.g. whale-inference.whale.user.requests)
  create     create the missing topics (default: all of Smart Whale's; existing ones are
             never changed); --dry-run prints what would be created
Options:
  --config FILE     the configuration (default: $WHALE_CONFIG, else ./whale.config.json)
  --brokers LIST    comma-separated brokers instead of kafka.brokers / KAFKA_BROKERS
  --json            machine-readable output
Exit codes: 0 ok, 1 the cluster failed or cannot do it, 2 usage or configuration error.
`;

export async function topicsCommand(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        brokers: { type: 'string' },
        json: { type: 'boolean' },
        all: { type: 'boolean' },
        group: { type: 'string' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`whale topics: ${(err as Error).message}\n\n${TOPICS_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(TOPICS_USAGE);
    return 0;
  }
  const [action, ...names] = positionals;
  const usage = (msg: string): number => {
    io.err(`whale topics: ${msg}\n\n${TOPICS_USAGE}`);
    return 2;
  };
  if (action !== 'list' && action !== 'describe' && action !== 'create') {
    return usage(action === undefined ? 'give an action: list, describe or create' : `unknown action '${action}'`);
  }
  if (action === 'list' && names.length > 0) return usage(`list takes no topic names (got '${names[0]}')`);
  const only = (flag: string, ok: boolean) => (ok ? undefined : usage(`--${flag} does not apply to '${action}'`));
  const misuse =
    only('all', !values.all || action === 'list') ??
    only('dry-run', !values['dry-run'] || action === 'create') ??
    only('json', !values.json || action !== 'create') ??
    only('group', values.group === undefined || action === 'describe');
  if (misuse !== undefined) return misuse;

  const config = loadConfig(values.config === undefined ? {} : { path: values.config });
  const kafka = config.kafka;
  const brokers = values.brokers === undefined ? kafka.brokers : parseList(values.brokers);
  if (brokers.length === 0) {
    throw new WhaleError(
      'ERR_CONFIG',
      'kafka.brokers: no Kafka brokers: set KAFKA_BROKERS, kafka.brokers in the configuration, or --brokers',
      { field: 'kafka.brokers' },
    );
  }
  // The services' topics and each configured model's own (as whale start creates them).
  const models = new TopicManager({ kafka }).modelPlan(config.models.map((m) => m.name));
  const plan = [...topicPlan(kafka.topics), ...models];
  const planned = new Map(plan.map((p) => [p.topic, p]));
  // A named topic outside the plan gets the default spec (e.g. one in kafka.topics.extra of another node).
  const chosen: TopicPlan[] =
    names.length === 0
      ? plan
      : names.map((topic) => planned.get(topic) ?? { topic, spec: { ...kafka.topics.defaults } });
  if (action === 'create' && values['dry-run']) {
    for (const p of chosen) io.out(`${p.topic}  ${specText(p)}\n`);
    return 0;
  }
  const admin = new KafkaTopicAdmin({
    brokers,
    clientId: kafka.clientId,
    ...(kafka.tls ? { tls: kafka.tls } : {}),
    ...(kafka.sasl ? { sasl: kafka.sasl } : {}),
  });
  try {
    if (action === 'list') {
      const existing = await admin.list();
      const have = new Set(existing);
      const rows = values.all
        ? existing.map((name) => ({ name, whale: planned.has(name), exists: true }))
        : plan.map((p) => ({ name: p.topic, whale: true, exists: have.has(p.topic) }));
      if (values.json) io.out(`${JSON.stringify(rows)}\n`);
      else for (const r of rows) io.out(`${r.exists ? ' ' : '*'} ${r.name}\n`);
      if (!values.json && !values.all && rows.some((r) => !r.exists))
        io.err(
          `whale topics: * = missing (${rows.filter((r) => !r.exists).length}); 'whale topics create' creates them\n`,
        );
      return 0;
    }
    if (action === 'describe') {
      const existing = new Set(await admin.list());
      const wanted = names.length > 0 ? names : plan.map((p) => p.topic).filter((t) => existing.has(t));
      const infos = await admin.describe(wanted);
      const lags =
        values.group === undefined
          ? []
          : await admin.groupLag(
              values.group,
              infos.map((t) => t.name),
            );
      const lagOf = (topic: string, partition: number) =>
        lags.find((l) => l.topic === topic && l.partition === partition);
      const rows = infos.map((t) => ({
        ...t,
        partitions: t.partitions.map((p) => {
          const l = lagOf(t.name, p.partition);
          return { ...p, ...(l?.committed === undefined ? {} : { committed: l.committed, lag: l.lag }) };
        }),
        messages: messages(t),
        ...(values.group === undefined
          ? {}
          : { group: values.group, lag: lags.filter((l) => l.topic === t.name).reduce((n, l) => n + (l.lag ?? 0), 0) }),
        ...(planned.has(t.name)
          ? { configured: planned.get(t.name)!.spec, differs: differences(t, planned.get(t.name)!) }
          : {}),
      }));
      if (values.json) {
        io.out(`${JSON.stringify(rows)}\n`);
        return 0;
      }
      for (const r of rows) {
        const rf = r.partitions[0]?.replicas.length ?? 0;
        const retention =
          r.retentionMs === undefined
            ? 'retention unknown'
            : r.retentionMs < 0
              ? 'kept forever'
              : `retention ${r.retentionMs} ms`;
        io.out(
          `${r.name}  partitions ${r.partitions.length}  replication ${rf}  messages ${r.messages}  ${retention}${r.group === undefined ? '' : `  group ${r.group} lag ${r.lag}`}\n`,
        );
        for (const p of r.partitions) {
          const group =
            r.group === undefined
              ? ''
              : 'committed' in p
                ? `  committed ${p.committed}  lag ${p.lag}`
                : '  committed -';
          io.out(
            `  ${p.partition}: leader ${p.leader}  replicas ${p.replicas.join(',')}  isr ${p.isr.join(',')}  offsets ${p.low}..${p.high}${group}\n`,
          );
        }
        for (const d of r.differs ?? []) io.out(`  differs from the configuration: ${d}\n`);
      }
      return 0;
    }
    const created = await admin.create(chosen);
    const made = new Set(created);
    for (const p of chosen)
      io.out(`${made.has(p.topic) ? 'created' : 'exists '} ${p.topic}${made.has(p.topic) ? `  ${specText(p)}` : ''}\n`);
    return 0;
  } catch (err) {
    // A topic named to describe that does not exist is the user's to fix.
    if (isWhaleError(err, 'ERR_NOT_FOUND')) {
      io.err(`whale topics: ${err.message} [${err.code}]\n`);
      return 2;
    }
    throw err;
  } finally {
    await admin.close();
  }
}

function specText(p: TopicPlan): string {
  const s = p.spec;
  return [
    `partitions ${s.partitions}`,
    `replication ${s.replicationFactor ?? 'min(3, brokers)'}`,
    s.retentionMs === undefined ? 'retention: broker default' : `retention ${s.retentionMs} ms`,
  ].join('  ');
}

function messages(t: TopicInfo): string {
  return t.partitions.reduce((n, p) => n + (BigInt(p.high) - BigInt(p.low)), 0n).toString();
}

function differences(t: TopicInfo, p: TopicPlan): string[] {
  const out: string[] = [];
  if (t.partitions.length !== p.spec.partitions)
    out.push(
      `partitions ${t.partitions.length}, configured ${p.spec.partitions} (not changed: adding partitions moves keys)`,
    );
  const rf = t.partitions[0]?.replicas.length;
  if (p.spec.replicationFactor !== undefined && rf !== undefined && rf !== p.spec.replicationFactor)
    out.push(`replication ${rf}, configured ${p.spec.replicationFactor}`);
  if (p.spec.retentionMs !== undefined && t.retentionMs !== undefined && t.retentionMs !== p.spec.retentionMs)
    out.push(`retention ${t.retentionMs} ms, configured ${p.spec.retentionMs} ms`);
  return out;
}
