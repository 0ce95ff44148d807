/**
 * The `kafka` section of whale.config.json (docs/configuration.md, "Kafka"):
 *
 *   "kafka": {
 *     "brokers": ["b-1.example:9096"],            // KAFKA_BROKERS replaces it
 *     "clientId": "smart-whale",                  // KAFKA_CLIENT_ID
 *     "idempotent": true,                         // the producer (acks=all, no duplicates on retry)
 *     "connectTimeoutMs": 10000,                  // a first connection that takes longer fails the start
 *     "sessionTimeoutMs": 10000,                  // consumer groups: a member silent this long is dropped
 *     "tls": true | { "caFile", "certFile", "keyFile", "rejectUnauthorized", "servername" },
 *     "sasl": { "mechanism": "scram-sha-512", "username": "whale", "passwordFile": "/run/secrets/kafka" },
 *     "topics": { "provision": true, "partitions": 3, "replicationFactor": 3, "retentionMs": 604800000,
 *                 "overrides": { "whale.metrics": { "partitions": 1, "retentionMs": 3600000 } },
 *                 "extra": ["my.topic"] }
 *   }
 *
 * Paths are relative to the configuration file. A SASL password is never
 * written in the file itself (it would travel with it): `passwordFile`, or
 * KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE. The KAFKA_* variables apply
 * on top (src/transport/kafka-options.ts, resolveKafkaSecurity).
 */
import { isAbsolute, resolve } from 'node:path';

import type { WhaleEnv } from '../common/env.js';
import { parseList } from '../common/env.js';
import { arrayAt, booleanAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';
import { defaultProvisioning, type TopicProvisioning, type TopicSpec } from '../transport/kafka-admin.js';
import {
  readSecretFile,
  resolveKafkaSecurity,
  SASL_MECHANISMS,
  trimSecret,
  type KafkaSecurityDraft,
  type KafkaSecurityOptions,
  type KafkaTlsOptions,
} from '../transport/kafka-options.js';

/** What KafkaBus and the topic admin need: connection, security, producer mode and topic provisioning. */
export interface KafkaSettings extends KafkaSecurityOptions {
  /** Empty: no Kafka (the in-process bus). */
  brokers: string[];
  clientId: string;
  idempotent: boolean;
  /** A first connection (producer, consumer) that takes longer fails with ERR_UNAVAILABLE (KafkaBus, default 10 s). */
  connectTimeoutMs?: number;
  /** Consumer group session (and rebalance) timeout (KafkaBus, default 10 s). */
  sessionTimeoutMs?: number;
  topics: TopicProvisioning;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** The file's `kafka` section (undefined: none) with the KAFKA_* variables applied; ERR_CONFIG naming the field. */
export function parseKafka(raw: unknown, baseDir: string, env: WhaleEnv): KafkaSettings {
  const k = objectAt(raw ?? {}, 'kafka', [
    'brokers',
    'clientId',
    'idempotent',
    'connectTimeoutMs',
    'sessionTimeoutMs',
    'tls',
    'sasl',
    'topics',
  ]);
  const fileBrokers = optional(k.brokers, (v) =>
    typeof v === 'string'
      ? parseList(v)
      : arrayAt(v, 'kafka.brokers').map((b, i) => stringAt(b, `kafka.brokers[${i}]`, { pattern: /^\S+:\d+$/ })),
  );
  const envBrokers = env.kafkaBrokers;
  const path = (v: unknown, field: string) => {
    const p = stringAt(v, field);
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  const draft: KafkaSecurityDraft = {};
  if (k.tls !== undefined) {
    if (typeof k.tls === 'boolean') draft.tls = k.tls;
    else {
      const t = objectAt(k.tls, 'kafka.tls', ['caFile', 'certFile', 'keyFile', 'rejectUnauthorized', 'servername']);
      const tls: KafkaTlsOptions = {};
      if (t.caFile !== undefined) tls.ca = readSecretFile(path(t.caFile, 'kafka.tls.caFile'), 'kafka.tls.caFile');
      if (t.certFile !== undefined)
        tls.cert = readSecretFile(path(t.certFile, 'kafka.tls.certFile'), 'kafka.tls.certFile');
      if (t.keyFile !== undefined)
        tls.key = readSecretFile(path(t.keyFile, 'kafka.tls.keyFile'), 'kafka.tls.keyFile', 'ERR_CONFIG', {
          secret: true,
        });
      if (t.rejectUnauthorized !== undefined)
        tls.rejectUnauthorized = booleanAt(t.rejectUnauthorized, 'kafka.tls.rejectUnauthorized');
      if (t.servername !== undefined) tls.servername = stringAt(t.servername, 'kafka.tls.servername');
      draft.tls = tls;
    }
  }
  if (k.sasl !== undefined) {
    if (k.sasl !== null && typeof k.sasl === 'object' && 'password' in k.sasl) {
      throw configError(
        'kafka.sasl.password',
        'a password is not kept in the configuration file: use kafka.sasl.passwordFile, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE',
      );
    }
    const s = objectAt(k.sasl, 'kafka.sasl', ['mechanism', 'username', 'passwordFile']);
    draft.sasl = {
      ...(s.mechanism === undefined
        ? {}
        : { mechanism: stringAt(s.mechanism, 'kafka.sasl.mechanism', { oneOf: SASL_MECHANISMS }) }),
      ...(s.username === undefined ? {} : { username: stringAt(s.username, 'kafka.sasl.username') }),
      ...(s.passwordFile === undefined
        ? {}
        : {
            password: trimSecret(
              readSecretFile(path(s.passwordFile, 'kafka.sasl.passwordFile'), 'kafka.sasl.passwordFile', 'ERR_CONFIG', {
                secret: true,
              }),
            ),
          }),
    };
  }
  const security = resolveKafkaSecurity(draft, env);
  return {
    brokers: envBrokers.length > 0 ? envBrokers : (fileBrokers ?? []),
    clientId:
      env.kafkaClientId ??
      optional(k.clientId, (v) => stringAt(v, 'kafka.clientId', { pattern: /^[A-Za-z0-9._-]{1,255}$/ })) ??
      'smart-whale',
    // WHALE_KAFKA_IDEMPOTENT=0 wins (librdkafka's mock cluster cannot serve idempotent producers).
    idempotent: env.kafkaIdempotent ? (optional(k.idempotent, (v) => booleanAt(v, 'kafka.idempotent')) ?? true) : false,
    ...(k.connectTimeoutMs === undefined
      ? {}
      : {
          connectTimeoutMs: numberAt(k.connectTimeoutMs, 'kafka.connectTimeoutMs', {
            integer: true,
            min: 100,
            max: 3_600_000,
          }),
        }),
    ...(k.sessionTimeoutMs === undefined
      ? {}
      : {
          sessionTimeoutMs: numberAt(k.sessionTimeoutMs, 'kafka.sessionTimeoutMs', {
            integer: true,
            min: 1000,
            max: 1_800_000,
          }),
        }),
    topics: parseTopics(k.topics),
    ...security,
  };
}

function parseSpec(raw: unknown, at: string, keys: readonly string[]): Partial<TopicSpec> {
  const o = objectAt(raw, at, keys);
  const out: Partial<TopicSpec> = {};
  if (o.partitions !== undefined)
    out.partitions = numberAt(o.partitions, `${at}.partitions`, { integer: true, min: 1, max: 10_000 });
  if (o.replicationFactor !== undefined)
    out.replicationFactor = numberAt(o.replicationFactor, `${at}.replicationFactor`, {
      integer: true,
      min: 1,
      max: 32,
    });
  // -1: keep forever (Kafka's own meaning of retention.ms = -1).
  if (o.retentionMs !== undefined) {
    const r = numberAt(o.retentionMs, `${at}.retentionMs`, { integer: true, min: -1 });
    if (r === 0) throw configError(`${at}.retentionMs`, 'must be -1 (forever) or a positive number of ms');
    out.retentionMs = r;
  }
  return out;
}

function parseTopics(raw: unknown): TopicProvisioning {
  const out = defaultProvisioning();
  if (raw === undefined) return out;
  const SPEC = ['partitions', 'replicationFactor', 'retentionMs'] as const;
  const t = objectAt(raw, 'kafka.topics', ['provision', 'overrides', 'extra', ...SPEC]);
  out.provision = optional(t.provision, (v) => booleanAt(v, 'kafka.topics.provision')) ?? true;
  const { provision: _p, overrides: _o, extra: _e, ...spec } = t;
  out.defaults = { ...out.defaults, ...parseSpec(spec, 'kafka.topics', SPEC) };
  const overrides = objectAt(
    t.overrides ?? {},
    'kafka.topics.overrides',
    Object.keys((t.overrides as object | undefined) ?? {}),
  );
  for (const [name, v] of Object.entries(overrides)) {
    if (!TOPIC_NAME.test(name)) throw configError(`kafka.topics.overrides.${name}`, 'is not a valid Kafka topic name');
    out.overrides[name] = parseSpec(v, `kafka.topics.overrides.${name}`, SPEC);
  }
  out.extra =
    optional(t.extra, (v) =>
      arrayAt(v, 'kafka.topics.extra').map((n, i) => stringAt(n, `kafka.topics.extra[${i}]`, { pattern: TOPIC_NAME })),
    ) ?? [];
  return out;
}
