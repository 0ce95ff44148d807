/**
 * The `grpc` section of whale.config.json (the gRPC endpoint, src/server/grpc/)
 * and the `tls` sub-section that `http` and `grpc` share:
 *   "grpc": { "enabled": true, "port": 8081, "host": "127.0.0.1", "maxMessageBytes": 16777216,
 *             "maxConcurrentStreams": 1000, "tls": { "cert": "cert.pem", "key": "key.pem" } }
 * Paths are relative to the configuration file. Off by default.
 */
import { isAbsolute, resolve } from 'node:path';

import { booleanAt, numberAt, objectAt, optional, stringAt } from '../common/validate.js';

/** PEM certificate (chain) and private key files, absolute paths. */
export interface TlsConfig {
  cert: string;
  key: string;
}

export interface GrpcConfig {
  enabled: boolean;
  port: number;
  host: string;
  /** Largest message received (default: http.maxBodyBytes). */
  maxMessageBytes: number;
  /** Concurrent calls on one connection (default 1000). */
  maxConcurrentStreams: number;
  tls?: TlsConfig;
}

export function parseTls(raw: unknown, at: string, baseDir: string): TlsConfig {
  const t = objectAt(raw, at, ['cert', 'key']);
  const path = (k: 'cert' | 'key') => {
    const p = stringAt(t[k], `${at}.${k}`);
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  return { cert: path('cert'), key: path('key') };
}

export function parseGrpc(
  raw: unknown,
  baseDir: string,
  defaults: { host: string; maxMessageBytes: number },
): GrpcConfig {
  const g = objectAt(raw ?? {}, 'grpc', ['enabled', 'port', 'host', 'maxMessageBytes', 'maxConcurrentStreams', 'tls']);
  const tls = optional(g.tls, (v) => parseTls(v, 'grpc.tls', baseDir));
  return {
    enabled: optional(g.enabled, (v) => booleanAt(v, 'grpc.enabled')) ?? false,
    port: optional(g.port, (v) => numberAt(v, 'grpc.port', { integer: true, min: 0, max: 65_535 })) ?? 8081,
    host: optional(g.host, (v) => stringAt(v, 'grpc.host')) ?? defaults.host,
    maxMessageBytes:
      optional(g.maxMessageBytes, (v) =>
        numberAt(v, 'grpc.maxMessageBytes', { integer: true, min: 1024, max: 2 ** 31 - 1 }),
      ) ?? defaults.maxMessageBytes,
    maxConcurrentStreams:
      optional(g.maxConcurrentStreams, (v) =>
        numberAt(v, 'grpc.maxConcurrentStreams', { integer: true, min: 1, max: 1_000_000 }),
      ) ?? 1000,
    ...(tls ? { tls } : {}),
  };
}
