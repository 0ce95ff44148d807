/**
 * The HTTP endpoint: the KServe / Triton "V2" inference protocol (health,
 * server and model metadata, model readiness, infer with JSON tensors) on
 * node:http. Errors use the protocol's body `{"error": "..."}` (plus our `code`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';

import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ModelHost } from '../core/processing/model-host.js';
import {
  LEVELS,
  type InferenceRequest,
  type Level,
  type ProcessingPipeline,
} from '../core/processing/processing-pipeline.js';
import {
  ByteBudget,
  decodePathSegment,
  HttpError,
  limitRequest,
  MAX_CLIENT_STRING_LENGTH,
  requestUrl,
  sendError,
  type RequestLimits,
} from '../transport/http-json.js';
import { connectionSignal } from '../transport/connection-signal.js';
import { tenantFor } from './auth/guard.js';
import { instrumentRequest, logPath } from './request-context.js';
import { inferAnswer, readInferRequest, sendInferAnswer } from './v2-binary.js';

/**
 * An extra route (metrics, health, dashboard, …): it answers the request itself and returns true,
 * or returns false to let the next handler (and finally the V2 routes) have it.
 */
export type HttpRouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

/** A V2 infer route (no percent-encoding): no extension route answers it (see addHandler). */
const INFER_PATH = /^\/v2\/models\/[^%]+\/infer$/;

/** `h` on every path but a V2 infer route's, which skips its call (most handlers are async: a promise and a turn each). */
export function exceptInferRoutes(h: HttpRouteHandler): HttpRouteHandler {
  return (req, res, url) => (INFER_PATH.test(url.pathname) ? false : h(req, res, url));
}

export interface HttpServerOptions {
  host: ModelHost;
  pipeline: ProcessingPipeline;
  logger: Logger;
  serverName: string;
  serverVersion: string;
  maxBodyBytes: number;
  /** The whole request (headers and body) must arrive within this (checked every second at most). */
  requestTimeoutMs: number;
  /** The headers must arrive within this (default min(requestTimeoutMs, 10 s)); also what an opened connection that sends nothing is given. */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Open connections; one more is answered 503 and closed (default: from the file-descriptor limit, see defaultMaxConnections). */
  maxConnections?: number;
  /** Server-wide budget of request-body bytes being received and decoded (default 4 × maxBodyBytes); past it a body gets 503 unread. */
  maxBodyBytesInFlight?: number;
  /** Deepest nesting a JSON body may have (default 64). */
  maxJsonDepth?: number;
  /** An oversized body up to this size is read and dropped so the 413 reaches the client (default 32 MiB). */
  maxDiscardBytes?: number;
  /** False while starting or draining. */
  isReady: () => boolean;
  /** Why a loaded model cannot serve (a quota that admits nothing, …): it then fails readiness. */
  cannotServe?: (model: string) => string | undefined;
  /** Tried in order before the V2 routes. */
  handlers?: HttpRouteHandler[];
  /** HTTPS with this PEM certificate (chain) and key; absent: plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** The protocol extensions GET /v2 lists (default: the ones of the routes every such server has with WhaleServer's handlers). */
  protocolExtensions?: string[];
}

/** What GET /v2 lists by default: Triton's names for the statistics, repository, config and binary-tensor routes. */
export const V2_EXTENSIONS = ['statistics', 'model_repository', 'model_configuration', 'binary_tensor_data'];

export class InferenceHttpServer {
  private readonly server: Server | HttpsServer;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private connections = 0;
  private readonly refused = new WeakSet<Socket>();
  /** The server-wide budget of body bytes held (issue 23 item 6). */
  readonly bodyBudget: ByteBudget;
  /** What every request's body reads are held to (one object for all requests). */
  private readonly limits: RequestLimits;
  readonly maxConnections: number;
  /** Connections refused at the cap so far. */
  refusedConnections = 0;

  constructor(private readonly o: HttpServerOptions) {
    const headersTimeout = Math.min(o.headersTimeoutMs ?? 10_000, o.requestTimeoutMs);
    // Node checks these timeouts every connectionsCheckingInterval (30 s by default, which held slow sockets up to 60 s).
    const serverOptions = {
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
    };
    // Every request gets its id, log context, server span and access-log line (request-context.ts).
    const handler = (req: IncomingMessage, res: ServerResponse) =>
      void (this.refused.has(req.socket)
        ? undefined
        : instrumentRequest(req, res, this.o.logger, () => this.handle(req, res)));
    this.server = o.tls
      ? createHttpsServer({ ...serverOptions, cert: o.tls.cert, key: o.tls.key }, handler)
      : createServer(serverOptions, handler);
    this.server.requestTimeout = o.requestTimeoutMs;
    this.server.headersTimeout = headersTimeout;
    this.server.keepAliveTimeout = o.keepAliveTimeoutMs ?? 5_000;
    this.maxConnections = o.maxConnections ?? defaultMaxConnections();
    this.bodyBudget = new ByteBudget(o.maxBodyBytesInFlight ?? 4 * o.maxBodyBytes);
    this.limits = {
      budget: this.bodyBudget,
      maxDepth: o.maxJsonDepth ?? 64,
      maxDiscardBytes: o.maxDiscardBytes ?? 32 * 1024 * 1024,
    };
    // With TLS a connection is counted (or answered 503) once its handshake is done, on the socket requests then see.
    this.server.on(o.tls ? 'secureConnection' : 'connection', (socket: Socket) => this.admit(socket));
  }

  /** Open connections (not counting refused ones). */
  get openConnections(): number {
    return this.connections;
  }

  /** Counts a connection, or answers 503 on it and closes it when the cap is reached. */
  private admit(socket: Socket): void {
    if (this.connections >= this.maxConnections) {
      this.refused.add(socket);
      this.refusedConnections++;
      const body = JSON.stringify({
        error: `the server has ${this.maxConnections} open connections (its http.maxConnections): retry later`,
        code: 'ERR_OVERLOADED',
      });
      socket.on('error', () => undefined);
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      setTimeout(() => socket.destroy(), 2_000).unref();
      return;
    }
    this.connections++;
    socket.once('close', () => this.connections--);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new WhaleError('ERR_CONFIG', `http: cannot listen on ${host}:${port}: ${err.message}`, {
            field: 'http.port',
            cause: err,
          }),
        );
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Adds a route handler (before start, or at any time: later requests see it). It is not called for
   * V2 infer routes (`/v2/models/{m}[/versions/{v}]/infer`): those belong to the V2 router alone.
   */
  addHandler(h: HttpRouteHandler): void {
    (this.o.handlers ??= []).push(exceptInferRoutes(h));
  }

  /** Stops accepting connections, lets requests in flight finish for up to graceMs, then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((r) => (this.idle = r)),
        new Promise((r) => setTimeout(r, graceMs).unref()),
      ]);
    }
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.refused.has(req.socket)) return; // already answered 503 at the connection cap
    this.inFlight++;
    res.once('close', limitRequest(req, this.limits));
    try {
      const url = requestUrl(req);
      // Handlers in order; one that answers synchronously (most say "not mine" with a plain false) costs no await.
      for (const h of this.o.handlers ?? []) {
        const mine = h(req, res, url);
        if (mine === true || (mine !== false && (await mine))) return;
      }
      const { status, body } = await this.route(req, url);
      sendInferAnswer(res, status, body); // JSON, or an infer answer in the binary form (v2-binary.ts)
    } catch (err) {
      const status = sendError(res, err);
      if (status >= 500 && status !== 503 && status !== 504)
        this.o.logger.error('request failed', { path: logPath(req.url), error: (err as Error).message });
    } finally {
      if (--this.inFlight === 0) this.idle?.();
    }
  }

  private async route(req: IncomingMessage, url: URL): Promise<{ status: number; body: unknown }> {
    const parts = url.pathname.split('/').filter(Boolean).map(decodePathSegment);
    if (parts.some((p) => p.length > MAX_CLIENT_STRING_LENGTH)) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `url: a path segment is longer than ${MAX_CLIENT_STRING_LENGTH} characters`,
        { field: 'url' },
      );
    }
    if (parts[0] !== 'v2')
      throw new HttpError(404, `no route ${url.pathname} (this server speaks the V2 inference protocol under /v2)`);
    const method = req.method ?? 'GET';
    const expect = (m: 'GET' | 'POST') => {
      if (method !== m) throw new HttpError(405, `${url.pathname} accepts ${m}, not ${method}`);
    };
    if (parts.length === 1) {
      expect('GET');
      return {
        status: 200,
        body: {
          name: this.o.serverName,
          version: this.o.serverVersion,
          extensions: this.o.protocolExtensions ?? V2_EXTENSIONS,
        },
      };
    }
    if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready')) {
      expect('GET');
      if (parts[2] === 'live') return { status: 200, body: { live: true } };
      const blocked = this.o.host.names().filter((n) => !this.o.host.status(n).optional && this.o.cannotServe?.(n));
      const ready = this.o.isReady() && this.o.host.allReady() && blocked.length === 0;
      return { status: ready ? 200 : 503, body: { ready } };
    }
    if (parts[1] !== 'models' || parts.length < 3) throw new HttpError(404, `no route ${url.pathname}`);
    const name = parts[2]!;
    let rest = parts.slice(3);
    let version: string | undefined;
    if (rest[0] === 'versions') {
      if (rest.length < 2) throw new HttpError(404, `no route ${url.pathname}`);
      version = rest[1];
      rest = rest.slice(2);
    }
    const model = this.o.host.get(name, version);
    const action = rest.join('/');
    if (action === '') {
      expect('GET');
      const spec = (t: { name: string; datatype: string; shape: number[] }) => ({
        name: t.name,
        datatype: t.datatype,
        shape: t.shape,
      });
      return {
        status: 200,
        body: {
          name,
          // The default version first.
          versions: [
            model.version,
            ...this.o.host.versions(name).flatMap((v) => (v.version === model.version ? [] : [v.version])),
          ],
          platform: model.platform,
          inputs: model.inputs.map(spec),
          outputs: model.outputs.map(spec),
          // Smart Whale's addition: this version's origin (a federation's round and its evaluation, or the configuration).
          version_info: this.o.host.versions(name).find((v) => v.version === model.version),
        },
      };
    }
    if (action === 'ready') {
      expect('GET');
      return {
        status: 200,
        body: { name, ready: this.o.isReady() && this.o.host.isReady(name) && !this.o.cannotServe?.(name) },
      };
    }
    if (action === 'infer') {
      expect('POST');
      return { status: 200, body: await this.infer(req, name, version) };
    }
    throw new HttpError(404, `no route ${url.pathname}`);
  }

  private async infer(req: IncomingMessage, name: string, version?: string): Promise<unknown> {
    if (!this.o.isReady())
      throw new WhaleError('ERR_SHUTTING_DOWN', 'the server is not accepting requests (starting or shutting down)', {
        retriable: true,
      });
    const { request, inputs } = await readInferRequest(req, this.o.maxBodyBytes, this.o.host.get(name, version));
    const params = request.parameters ?? {};
    const level = params.level;
    if (level !== undefined && !LEVELS.includes(level as Level)) {
      throw new WhaleError('ERR_INVALID_ARG', `parameters.level: must be one of ${LEVELS.join(', ')}`, {
        field: 'parameters.level',
      });
    }
    // Built field by field: a literal of conditional spreads costs V8's slow copy path per spread (µs a request).
    const inference: InferenceRequest = {
      model: name,
      inputs,
      signal: connectionSignal(req), // the client went away: a queued request is dropped
    };
    if (version !== undefined) inference.version = version;
    if (request.id !== undefined) inference.requestId = request.id;
    if (level !== undefined) inference.level = level as Level;
    const tenant = tenantParam(req, params).tenant;
    if (tenant !== undefined) inference.tenant = tenant;
    const priority = optionalParam(params, 'priority', 'number').priority as number | undefined;
    if (priority !== undefined) inference.priority = priority;
    const timeoutMs = optionalParam(params, 'timeout_ms', 'number', 'timeoutMs').timeoutMs as number | undefined;
    if (timeoutMs !== undefined) inference.timeoutMs = timeoutMs;
    const complexity = optionalParam(params, 'complexity', 'number').complexity as number | undefined;
    if (complexity !== undefined) inference.complexity = complexity;
    const result = await this.o.pipeline.processRequest(inference);
    const fields: Record<string, unknown> = { model_name: result.model, model_version: result.modelVersion };
    if (request.id !== undefined) fields.id = request.id;
    fields.parameters = {
      level: result.level,
      cached: result.cached,
      models: result.models.join(','),
      device: result.device,
    };
    return inferAnswer(fields, result.outputs, request);
  }
}

/** The tenant the request counts against: its API key's (a tenant named in parameters must be that one; see auth/guard). */
export function tenantParam(req: IncomingMessage, params: Record<string, unknown>): { tenant?: string } {
  const claimed = optionalParam(params, 'tenant', 'string').tenant as string | undefined;
  const tenant = tenantFor(req, claimed);
  return tenant === undefined ? {} : { tenant };
}

/** One V2 request parameter, checked (type, finite, length) and renamed: `{}` when absent. */
export function optionalParam(
  params: Record<string, unknown>,
  key: string,
  type: 'string' | 'number',
  as = key,
): Record<string, unknown> {
  const v = params[key];
  if (v === undefined) return {};
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `parameters.${key}: must be a ${type === 'number' ? 'finite number' : 'string'}`,
      { field: `parameters.${key}` },
    );
  }
  if (typeof v === 'string' && v.length > MAX_CLIENT_STRING_LENGTH) {
    throw new WhaleError('ERR_INVALID_ARG', `parameters.${key}: longer than ${MAX_CLIENT_STRING_LENGTH} characters`, {
      field: `parameters.${key}`,
    });
  }
  return { [as]: v };
}

/**
 * Connections accepted by default: the process's file-descriptor soft limit
 * (Linux: /proc/self/limits) less 128 for files, stores and the bus, within
 * [64, 16384]; 1000 where the limit cannot be read.
 */
export function defaultMaxConnections(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? 16_384 : Math.max(64, Math.min(16_384, Number(m[1]) - 128));
  } catch {
    // not Linux
  }
  return 1000;
}
