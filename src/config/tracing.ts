/**
 * The `tracing` section of whale.config.json (OpenTelemetry, off by default):
 *   "tracing": { "enabled": true, "otlpEndpoint": "http://collector:4318", "serviceName": "whale-eu-1", "sampleRatio": 0.1 }
 * The environment goes on top: WHALE_TRACING (1/0), OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, traces at
 * <url>/v1/traces), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL), OTEL_EXPORTER_OTLP_HEADERS
 * (k=v,k2=v2), OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER_ARG. src/server/tracing.ts starts the SDK from it.
 */
import { readEnv, type WhaleEnv } from '../common/env.js';
import { booleanAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';

export interface TracingConfig {
  enabled: boolean;
  /** Where spans are POSTed (OTLP/HTTP, JSON): the full traces URL. */
  tracesUrl: string;
  serviceName: string;
  /** Share of new traces recorded, in [0, 1] (parent-based: a sampled incoming traceparent is always followed). */
  sampleRatio: number;
  /** Headers sent to the collector (from OTEL_EXPORTER_OTLP_HEADERS; never logged). */
  headers: Record<string, string>;
}

export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';

export function parseTracing(raw: unknown, env: WhaleEnv = readEnv()): TracingConfig {
  const t = objectAt(raw ?? {}, 'tracing', ['enabled', 'otlpEndpoint', 'serviceName', 'sampleRatio']);
  const enabled = env.tracing ?? optional(t.enabled, (v) => booleanAt(v, 'tracing.enabled')) ?? false;
  const endpoint =
    env.otlpEndpoint ?? optional(t.otlpEndpoint, (v) => stringAt(v, 'tracing.otlpEndpoint')) ?? DEFAULT_OTLP_ENDPOINT;
  const endpointField = env.otlpEndpoint !== undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'tracing.otlpEndpoint';
  const tracesUrl =
    env.otlpTracesEndpoint !== undefined
      ? httpUrl(env.otlpTracesEndpoint, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
      : tracesUrlOf(httpUrl(endpoint, endpointField));
  const serviceName =
    env.otelServiceName ??
    optional(t.serviceName, (v) => stringAt(v, 'tracing.serviceName', { pattern: /^[!-~]{1,256}$/ })) ??
    'smart-whale';
  const ratioText = env.otelTracesSamplerArg;
  const sampleRatio =
    ratioText !== undefined
      ? ratio(Number(ratioText), 'OTEL_TRACES_SAMPLER_ARG', ratioText)
      : (optional(t.sampleRatio, (v) => numberAt(v, 'tracing.sampleRatio', { min: 0, max: 1 })) ?? 1);
  return { enabled, tracesUrl, serviceName, sampleRatio, headers: parseHeaders(env.otlpHeaders) };
}

/** `<base>/v1/traces`, unless the URL already names the traces path. */
export function tracesUrlOf(base: string): string {
  return /\/v1\/traces\/?$/.test(base) ? base : `${base.replace(/\/+$/, '')}/v1/traces`;
}

function httpUrl(v: string, field: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw configError(field, `must be an http(s) URL, got '${v}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw configError(field, `must be an http(s) URL, got '${u.protocol}'`);
  if (u.username || u.password) throw configError(field, 'must not carry credentials (use OTEL_EXPORTER_OTLP_HEADERS)');
  return v;
}

function ratio(n: number, field: string, text: string): number {
  if (!(n >= 0 && n <= 1)) throw configError(field, `must be a number in [0, 1], got '${text}'`);
  return n;
}

/** OTEL_EXPORTER_OTLP_HEADERS: `k=v` pairs separated by commas, values percent-decoded (the OTel spec's form). */
export function parseHeaders(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (v ?? '').split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    // The value may be a secret: the message names the pair's position, never its text.
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key))
      throw configError('OTEL_EXPORTER_OTLP_HEADERS', 'each entry must be key=value with a header name as key');
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      throw configError('OTEL_EXPORTER_OTLP_HEADERS', `the value of ${key} is not valid percent-encoding`);
    }
    out[key.toLowerCase()] = value;
  }
  return out;
}
