/**
 * The `http` section of whale.config.json: the endpoint and its limits (body bytes, byte budget in flight,
 * timeouts, connections, JSON depth, evaluate's own limits). `http.tls` is read by whale-config (parseTls).
 */
import { configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';
import type { TlsConfig } from './grpc.js';

/** The HTTP endpoint and its limits (docs/configuration.md, docs/safety.md). */
export interface HttpConfig {
  port: number;
  host: string;
  /** Largest request body (413 past it). */
  maxBodyBytes: number;
  /** Headers and body must arrive within this. */
  requestTimeoutMs: number;
  /** Headers must arrive within this (also an opened connection that sends nothing). */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open connections; past it a new one is answered 503 and closed. Undefined: from the file-descriptor limit. */
  maxConnections?: number;
  /** Server-wide budget of request-body bytes being received and decoded; past it a body gets 503 (Retry-After) unread. */
  maxBodyBytesInFlight: number;
  /** Deepest nesting of a JSON body (400 past it). */
  maxJsonDepth: number;
  /** An oversized body up to this size is read and dropped so the client gets its 413 (past it the connection is closed). */
  maxDiscardBytes: number;
  /** HTTPS: PEM certificate and key paths (absent: plain HTTP). */
  tls?: TlsConfig;
  /** POST /v1/evaluate: its own, smaller body limit, and the time bound of a client's schema (patterns) validation. */
  evaluate: { maxBodyBytes: number; schemaTimeoutMs: number };
}

const MiB = 1024 * 1024;

/** The `http` section: the endpoint and its limits (issue 23: byte budgets, timeouts, connection cap). */
export function parseHttp(raw: unknown): HttpConfig {
  const h = objectAt(raw, 'http', [
    'port',
    'host',
    'maxBodyBytes',
    'requestTimeoutMs',
    'headersTimeoutMs',
    'keepAliveTimeoutMs',
    'maxConnections',
    'maxBodyBytesInFlight',
    'maxJsonDepth',
    'maxDiscardBytes',
    'evaluate',
    'tls',
  ]);
  const int = (k: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
    optional(h[k], (v) => numberAt(v, `http.${k}`, { integer: true, min, max }));
  const maxBodyBytes = int('maxBodyBytes', 1024) ?? 16 * MiB;
  const requestTimeoutMs =
    optional(h.requestTimeoutMs, (v) => numberAt(v, 'http.requestTimeoutMs', { min: 1 })) ?? 30_000;
  const maxBodyBytesInFlight = int('maxBodyBytesInFlight', 1024) ?? Math.max(64 * MiB, 4 * maxBodyBytes);
  if (maxBodyBytesInFlight < maxBodyBytes)
    throw configError('http.maxBodyBytesInFlight', `must be at least http.maxBodyBytes (${maxBodyBytes})`);
  const e = objectAt(h.evaluate ?? {}, 'http.evaluate', ['maxBodyBytes', 'schemaTimeoutMs']);
  const maxConnections = int('maxConnections', 1, 1_000_000);
  return {
    port: int('port', 0, 65_535) ?? 8080,
    host: optional(h.host, (v) => stringAt(v, 'http.host')) ?? '127.0.0.1',
    maxBodyBytes,
    requestTimeoutMs,
    headersTimeoutMs: Math.min(
      requestTimeoutMs,
      optional(h.headersTimeoutMs, (v) => numberAt(v, 'http.headersTimeoutMs', { min: 1 })) ?? 10_000,
    ),
    keepAliveTimeoutMs:
      optional(h.keepAliveTimeoutMs, (v) => numberAt(v, 'http.keepAliveTimeoutMs', { min: 1, max: 3_600_000 })) ??
      5_000,
    ...(maxConnections === undefined ? {} : { maxConnections }),
    maxBodyBytesInFlight,
    maxJsonDepth: int('maxJsonDepth', 2, 10_000) ?? 64,
    maxDiscardBytes: int('maxDiscardBytes', 0) ?? 32 * MiB,
    evaluate: {
      maxBodyBytes: Math.min(
        maxBodyBytes,
        optional(e.maxBodyBytes, (v) => numberAt(v, 'http.evaluate.maxBodyBytes', { integer: true, min: 1024 })) ??
          MiB / 4,
      ),
      schemaTimeoutMs:
        optional(e.schemaTimeoutMs, (v) => numberAt(v, 'http.evaluate.schemaTimeoutMs', { min: 1, max: 60_000 })) ??
        1_000,
    },
  };
}
