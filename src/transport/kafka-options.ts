/**
 * How Smart Whale reaches a secured Kafka cluster: TLS (system CAs or a CA
 * bundle, optional client certificate) and SASL (PLAIN, SCRAM-SHA-256,
 * SCRAM-SHA-512), checked once and turned into kafkajs's `ssl` / `sasl`
 * options by kafkaSecurity(). KafkaBus and the topic admin both use it.
 *
 * The KAFKA_* variables (src/common/env.ts) give the same settings without a
 * configuration file: kafkaOptionsFromEnv(). The SASL password comes from
 * KAFKA_SASL_PASSWORD or a file (KAFKA_SASL_PASSWORD_FILE); it is kept as a
 * non-enumerable property, so logging or JSON-printing the options never shows
 * it, and no error message here ever contains it.
 */
import { readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

import type { SASLOptions } from 'kafkajs';

import type { WhaleEnv } from '../common/env.js';
import { WhaleError, type WhaleErrorCode } from '../common/errors.js';
import { describe, isPlainObject } from '../common/validate.js';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface KafkaTlsOptions {
  /** PEM text of the CA certificate(s) to trust instead of the system's (e.g. a private CA). */
  ca?: string;
  /** PEM client certificate and key, for clusters that authenticate clients by certificate (mTLS). */
  cert?: string;
  key?: string;
  /** Verify the brokers' certificates (default true; false only for a test cluster). */
  rejectUnauthorized?: boolean;
  /** Server name to verify, when it differs from the broker host. */
  servername?: string;
}

export interface KafkaSaslOptions {
  mechanism: SaslMechanism;
  username: string;
  /** Never logged or shown in errors; see saslOptions() for a copy that hides it from inspection. */
  password: string;
}

/** The security part of KafkaBusOptions (and of the topic admin's options). */
export interface KafkaSecurityOptions {
  /** true: TLS with the system's CA store; an object: TLS with these settings; absent/false: plaintext. */
  tls?: boolean | KafkaTlsOptions;
  sasl?: KafkaSaslOptions;
}

/** What kafkajs's KafkaConfig receives for the security options above. */
export interface KafkaSecurityConfig {
  ssl?: boolean | ConnectionOptions;
  sasl?: SASLOptions;
}

/**
 * A SASL settings object whose password is non-enumerable: kafkajs reads it as
 * `sasl.password`, but console.log / util.inspect / JSON.stringify of the
 * options do not show it.
 */
export function saslOptions(mechanism: SaslMechanism, username: string, password: string): KafkaSaslOptions {
  const o = { mechanism, username } as KafkaSaslOptions;
  Object.defineProperty(o, 'password', { value: password, enumerable: false, writable: false });
  return o;
}

/**
 * Checks the security options and returns kafkajs's `ssl` / `sasl`.
 * Errors name the field (`<at>.sasl.mechanism`, …) with `code` (ERR_INVALID_OPTION
 * for options given in code; the config parser checks its own fields first).
 */
export function kafkaSecurity(
  o: KafkaSecurityOptions,
  at = 'options',
  code: WhaleErrorCode = 'ERR_INVALID_OPTION',
): KafkaSecurityConfig {
  const fail = (field: string, what: string): never => {
    throw new WhaleError(code, `${field}: ${what}`, { field });
  };
  const out: KafkaSecurityConfig = {};
  const tls = o.tls;
  if (tls !== undefined && tls !== false) {
    if (tls === true) out.ssl = true;
    else {
      if (!isPlainObject(tls)) fail(`${at}.tls`, `must be true, false or an object, got ${describe(tls)}`);
      const t = tls as Record<string, unknown>;
      const ssl: ConnectionOptions = {};
      for (const k of ['ca', 'cert', 'key', 'servername'] as const) {
        const v = t[k];
        if (v === undefined) continue;
        // Not describe(v): a key's PEM text has no place in a message.
        if (typeof v !== 'string' || v.length === 0)
          fail(`${at}.tls.${k}`, `must be a non-empty string (PEM text${k === 'servername' ? ' or a host name' : ''})`);
        ssl[k] = v as string;
      }
      if ((t.cert === undefined) !== (t.key === undefined))
        fail(`${at}.tls.${t.cert === undefined ? 'cert' : 'key'}`, 'a client certificate needs both cert and key');
      if (t.rejectUnauthorized !== undefined) {
        if (typeof t.rejectUnauthorized !== 'boolean')
          fail(`${at}.tls.rejectUnauthorized`, `must be a boolean, got ${describe(t.rejectUnauthorized)}`);
        ssl.rejectUnauthorized = t.rejectUnauthorized as boolean;
      }
      out.ssl = Object.keys(ssl).length === 0 ? true : ssl;
    }
  }
  const s = o.sasl;
  if (s !== undefined) {
    if (!isPlainObject(s))
      fail(`${at}.sasl`, `must be an object { mechanism, username, password }, got ${describe(s)}`);
    if (!SASL_MECHANISMS.includes(s.mechanism))
      fail(`${at}.sasl.mechanism`, `must be one of ${SASL_MECHANISMS.join(', ')}, got ${describe(s.mechanism)}`);
    if (typeof s.username !== 'string' || s.username.length === 0)
      fail(`${at}.sasl.username`, 'must be a non-empty string');
    if (typeof s.password !== 'string' || s.password.length === 0)
      fail(`${at}.sasl.password`, 'must be a non-empty string');
    out.sasl = saslOptions(s.mechanism, s.username, s.password) as SASLOptions;
  }
  return out;
}

/**
 * Reads a PEM or secret file for `field`; the error names the field and the file, never its content.
 * `secret`: a password or private key, refused when group or others may read it (chmod 600), as
 * WHALE_FEDERATION_KEY_FILE and WHALE_IDENTITY_KEY_FILE are.
 */
export function readSecretFile(
  path: string,
  field: string,
  code: WhaleErrorCode = 'ERR_CONFIG',
  o: { secret?: boolean } = {},
): string {
  try {
    if (o.secret && process.platform !== 'win32') {
      const mode = statSync(path).mode;
      if ((mode & 0o077) !== 0)
        throw new WhaleError(
          code,
          `${field}: ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
          { field },
        );
    }
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof WhaleError) throw err;
    throw new WhaleError(
      code,
      `${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      { field },
    );
  }
}

/** The connection settings of the KAFKA_* variables (brokers empty when KAFKA_BROKERS is unset). */
export interface KafkaEnvOptions extends KafkaSecurityOptions {
  brokers: string[];
  clientId?: string;
  /** WHALE_KAFKA_IDEMPOTENT (default true). */
  idempotent: boolean;
}

/** TLS and SASL as a configuration file gives them (files already read), before the KAFKA_* variables apply. */
export interface KafkaSecurityDraft {
  tls?: boolean | KafkaTlsOptions;
  sasl?: { mechanism?: string; username?: string; password?: string };
}

/**
 * KAFKA_BROKERS, KAFKA_CLIENT_ID, WHALE_KAFKA_IDEMPOTENT and the security variables as KafkaBus options
 * (no configuration file: the services and learner processes).
 */
export function kafkaOptionsFromEnv(env: WhaleEnv): KafkaEnvOptions {
  return {
    brokers: env.kafkaBrokers,
    ...(env.kafkaClientId ? { clientId: env.kafkaClientId } : {}),
    idempotent: env.kafkaIdempotent,
    ...resolveKafkaSecurity({}, env),
  };
}

/**
 * The one place the security settings are resolved: `draft` (the `kafka`
 * section of whale.config.json, or nothing) with the variables on top.
 * KAFKA_SASL_MECHANISM / _USERNAME / _PASSWORD / _PASSWORD_FILE replace the
 * file's values one by one (so the file may name the user and the environment
 * hold the password); KAFKA_TLS_CA_FILE replaces the CA; KAFKA_TLS=1/0 turns
 * TLS on or off. SASL turns TLS on unless it is explicitly off (SASL over
 * plaintext would send a PLAIN password in clear). ERR_CONFIG naming the
 * variable or the `kafka.…` field; never the password.
 */
export function resolveKafkaSecurity(draft: KafkaSecurityDraft, env: WhaleEnv): KafkaSecurityOptions {
  const fail = (field: string, what: string): never => {
    throw new WhaleError('ERR_CONFIG', `${field}: ${what}`, { field });
  };
  const out: KafkaSecurityOptions = {};
  let tls = draft.tls;
  const caFile = env.kafkaTlsCaFile;
  if (caFile !== undefined)
    tls = { ...(typeof tls === 'object' ? tls : {}), ca: readSecretFile(caFile, 'KAFKA_TLS_CA_FILE') };
  const tlsFlag = env.kafkaTls;
  if (tlsFlag === false) tls = false;
  else if (tlsFlag === true && !tls) tls = true;

  const envMech = env.kafkaSaslMechanism;
  const mechanism = envMech ?? draft.sasl?.mechanism;
  const mechField = envMech !== undefined ? 'KAFKA_SASL_MECHANISM' : 'kafka.sasl.mechanism';
  const username = env.kafkaSaslUsername ?? draft.sasl?.username;
  const userField = env.kafkaSaslUsername !== undefined ? 'KAFKA_SASL_USERNAME' : 'kafka.sasl.username';
  if (env.kafkaSaslPassword !== undefined && env.kafkaSaslPasswordFile !== undefined) {
    fail('KAFKA_SASL_PASSWORD_FILE', 'set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both');
  }
  const passwordFile = env.kafkaSaslPasswordFile;
  const password =
    env.kafkaSaslPassword ??
    (passwordFile !== undefined
      ? trimSecret(readSecretFile(passwordFile, 'KAFKA_SASL_PASSWORD_FILE', 'ERR_CONFIG', { secret: true }))
      : draft.sasl?.password);
  if (mechanism === undefined) {
    const stray: [string, unknown][] = [
      ['KAFKA_SASL_USERNAME', env.kafkaSaslUsername],
      ['KAFKA_SASL_PASSWORD', env.kafkaSaslPassword],
      ['KAFKA_SASL_PASSWORD_FILE', passwordFile],
      ['kafka.sasl.username', draft.sasl?.username],
      ['kafka.sasl.passwordFile', draft.sasl?.password],
    ];
    const first = stray.find(([, v]) => v !== undefined);
    if (first)
      fail(
        first[0].startsWith('KAFKA_') ? 'KAFKA_SASL_MECHANISM' : 'kafka.sasl.mechanism',
        `is required when ${first[0]} is set (one of ${SASL_MECHANISMS.join(', ')})`,
      );
  } else {
    const mech = mechanism.toLowerCase();
    if (!(SASL_MECHANISMS as readonly string[]).includes(mech))
      fail(mechField, `must be one of ${SASL_MECHANISMS.join(', ')}, got ${describe(mechanism)}`);
    if (!username) fail(userField, `is required with SASL (${mech})`);
    if (!password)
      fail(
        envMech !== undefined ? 'KAFKA_SASL_PASSWORD' : 'kafka.sasl.passwordFile',
        `is required with SASL (${mech}): KAFKA_SASL_PASSWORD, KAFKA_SASL_PASSWORD_FILE or kafka.sasl.passwordFile`,
      );
    out.sasl = saslOptions(mech as SaslMechanism, username!, password!);
    if (tls === undefined) tls = true;
  }
  if (tls !== undefined && tls !== false) out.tls = tls;
  // The same checks KafkaBus makes, reported as configuration errors.
  kafkaSecurity(out, 'kafka', 'ERR_CONFIG');
  return out;
}

/** A secret file's content without the trailing newline editors add. */
export function trimSecret(text: string): string {
  return text.replace(/\r?\n$/, '');
}
