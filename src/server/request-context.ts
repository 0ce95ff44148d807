/**
 * What every HTTP request gets before any route sees it: a request id (the
 * client's `x-request-id` when it is safe — at most 128 characters of
 * [A-Za-z0-9._:/+=@-] — else a generated one), echoed in the response's
 * `x-request-id`; a log context carrying it (and the trace id) into every
 * log line written while the request is handled; a server span when tracing
 * is on (W3C `traceparent` of the caller followed); and, when the response is
 * done, one access-log line (JSON, through the server's logger):
 *
 *   {"msg":"request","method":"POST","path":"/v2/models/mnist/infer","status":200,"durationMs":1.9,
 *    "bytes":180,"bytesIn":3185,"requestId":"…","keyId":"3f2a…","tenant":"acme","traceId":"…"}
 *
 * Never logged: headers (Authorization, x-api-key, cookies), the query string, bodies.
 * Messages published on the bus while a request is handled carry its id (header x-request-id),
 * and their consumers log under it (src/transport/base-bus.ts, delivery.ts).
 * gRPC calls get the same (instrumentGrpcCall): the id from the `x-request-id` metadata, echoed
 * in the response metadata, a server span named after the method, one access-log line with
 * the method's path and the gRPC status code.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { Metadata } from '@grpc/grpc-js';

import { REQUEST_ID_HEADER, SAFE_REQUEST_ID, withLogContext, type Logger } from '../common/logger.js';
import {
  endSpan,
  extractTraceContext,
  runInSpan,
  SpanKind,
  startSpan,
  tracingActive,
  type Span,
} from '../common/trace.js';
import type { Principal } from '../config/api-keys.js';
import { principalOf } from './auth/guard.js';

/** A client's request id is used when it is this safe (SAFE_REQUEST_ID): bounded, no spaces, quotes, control or non-ASCII characters. */
export { REQUEST_ID_HEADER, SAFE_REQUEST_ID };

const requestIds = new WeakMap<IncomingMessage, string>();

/** The id of a request being handled (undefined for one that did not go through instrumentRequest). */
export function requestIdOf(req: IncomingMessage): string | undefined {
  return requestIds.get(req);
}

/** The client's id when safe, else a new one (a random UUID: crypto's batched entropy, ~0.2 µs against ~5 µs for randomBytes). */
export function chooseRequestId(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v !== undefined && SAFE_REQUEST_ID.test(v) ? v : randomUUID();
}

/** The path to log and name spans with: no query string, at most 512 characters. */
export function logPath(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.search(/[?#]/);
  const path = q === -1 ? raw : raw.slice(0, q);
  return path.length > 512 ? `${path.slice(0, 509)}...` : path;
}

/** The server's route prefixes (V2, /v1 extensions, metrics, health, dashboard). */
const KNOWN_ROUTE = /^\/(v1|v2|metrics|healthz|dashboard)(\/|$)/;

/** A low-cardinality route for the span name: names of models, versions, tasks and quotas become placeholders. */
export function routeOf(path: string): string {
  return path
    .replace(/^(\/v2\/models\/)[^/]+/, '$1{model}')
    .replace(/(\/versions\/)[^/]+/, '$1{version}')
    .replace(/^(\/v1\/tasks\/)[^/]+/, '$1{task}')
    .replace(/^(\/v1\/resources\/quotas\/)[^/]+/, '$1{model}');
}

/**
 * Runs `handle` for one request inside its request id's log context (and server span), counts the
 * response bytes and writes the access-log line when the response is finished or the connection closed.
 */
export function instrumentRequest(
  req: IncomingMessage,
  res: ServerResponse,
  logger: Logger,
  handle: () => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const requestId = chooseRequestId(req.headers[REQUEST_ID_HEADER]);
  requestIds.set(req, requestId);
  res.setHeader(REQUEST_ID_HEADER, requestId);
  const method = req.method ?? 'GET';
  const path = logPath(req.url);
  const bytes = countBytes(res);
  const span = tracingActive() ? serverSpan(req, method, path, requestId) : undefined;
  const sc = span?.spanContext();
  const traceId = sc && sc.traceFlags & 1 ? sc.traceId : undefined;
  res.once('close', () => {
    const status = res.statusCode;
    const p = principalOf(req);
    const declared = Number(req.headers['content-length']);
    // Set one by one (conditional spreads take V8's slow copy path, once per request here).
    const fields: Record<string, unknown> = {
      method,
      path,
      status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      bytes: bytes(),
    };
    if (Number.isSafeInteger(declared) && declared >= 0) fields.bytesIn = declared;
    fields.requestId = requestId;
    if (p) {
      fields.keyId = p.keyId;
      if (p.tenant !== undefined) fields.tenant = p.tenant;
    }
    if (traceId) fields.traceId = traceId;
    if (!res.writableFinished) fields.aborted = true;
    if (span) {
      span.setAttribute('http.response.status_code', status);
      if (p) span.setAttribute('whale.key_id', p.keyId);
      endSpan(span, status >= 500 ? new Error(`HTTP ${status}`) : undefined);
    }
    logger.info('request', fields);
  });
  return withLogContext(traceId ? { requestId, traceId } : { requestId }, () => runInSpan(span, handle));
}

function serverSpan(req: IncomingMessage, method: string, path: string, requestId: string): Span | undefined {
  const carrier: Record<string, string> = {};
  for (const h of ['traceparent', 'tracestate']) {
    const v = req.headers[h];
    if (typeof v === 'string') carrier[h] = v;
  }
  // Span names stay few: a path outside the server's routes (a scan, a typo) is named by its method only.
  const route = KNOWN_ROUTE.test(path) ? routeOf(path) : undefined;
  return startSpan(
    route ? `${method} ${route}` : method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'url.path': path,
        ...(route ? { 'http.route': route } : {}),
        'whale.request_id': requestId,
        'network.protocol.name': 'http',
      },
    },
    extractTraceContext(carrier),
  );
}

/** Counts the bytes written to the response (body only), by wrapping its write and end. */
function countBytes(res: ServerResponse): () => number {
  let n = 0;
  const add = (chunk: unknown, encoding?: unknown) => {
    if (typeof chunk === 'string')
      n += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) n += chunk.byteLength;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    add(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') add(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
  return () => n;
}

/** What a gRPC handler tells instrumentGrpcCall about its call: the gRPC status code and the key that made it. */
export interface GrpcCallOutcome {
  code: number;
  principal?: Principal | undefined;
}

/** The parts of a grpc-js call read here. */
export interface GrpcCallLike {
  getPath(): string;
  metadata: Metadata;
  sendMetadata(m: Metadata): void;
}

/** instrumentRequest for one unary gRPC call: `run` sets outcome.code (0 = OK) and outcome.principal. */
export function instrumentGrpcCall(
  call: GrpcCallLike,
  logger: Logger,
  run: (outcome: GrpcCallOutcome) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const first = (key: string) => {
    const v = call.metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  };
  const requestId = chooseRequestId(first(REQUEST_ID_HEADER));
  const method = logPath(call.getPath());
  const reply = new Metadata();
  reply.set(REQUEST_ID_HEADER, requestId);
  try {
    call.sendMetadata(reply);
  } catch {
    // the call was cancelled already
  }
  let span: Span | undefined;
  if (tracingActive()) {
    const carrier: Record<string, string> = {};
    for (const h of ['traceparent', 'tracestate']) {
      const v = first(h);
      if (v !== undefined) carrier[h] = v;
    }
    const [service = '', rpc = ''] = method.replace(/^\//, '').split('/');
    span = startSpan(
      method.replace(/^\//, ''),
      {
        kind: SpanKind.SERVER,
        attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpc, 'whale.request_id': requestId },
      },
      extractTraceContext(carrier),
    );
  }
  const sc = span?.spanContext();
  const traceId = sc && sc.traceFlags & 1 ? sc.traceId : undefined;
  const outcome: GrpcCallOutcome = { code: 0 };
  const finish = () => {
    const p = outcome.principal;
    if (span) {
      span.setAttribute('rpc.grpc.status_code', outcome.code);
      if (p) span.setAttribute('whale.key_id', p.keyId);
      // gRPC server spans are errors for these codes (OTel semantic conventions): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
      endSpan(
        span,
        [2, 4, 12, 13, 14, 15].includes(outcome.code) ? new Error(`gRPC status ${outcome.code}`) : undefined,
      );
    }
    logger.info('request', {
      method: 'GRPC',
      path: method,
      status: outcome.code,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      requestId,
      ...(p ? { keyId: p.keyId, ...(p.tenant !== undefined ? { tenant: p.tenant } : {}) } : {}),
      ...(traceId ? { traceId } : {}),
    });
  };
  return withLogContext(traceId ? { requestId, traceId } : { requestId }, () =>
    runInSpan(span, () => run(outcome)),
  ).finally(finish);
}
