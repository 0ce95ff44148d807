/**
 * The HTTP endpoint: the KServe / Triton "V2" inference protocol (health,
 * server and model metadata, model readiness, infer with JSON tensors) on
 * node:http. Errors use the protocol's body `{"error": "..."}` (plus our `code`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ModelHost } from '../core/processing/model-host.js';
import { LEVELS, type Level, type ProcessingPipeline } from '../core/processing/processing-pipeline.js';
import { HttpError, readJson, sendError, sendJson } from '../transport/http-json.js';
import { fromNamedTensors, parseInferRequest, toNamedTensors } from './v2-tensors.js';

/**
 * An extra route (metrics, health, dashboard, …): it answers the request itself and returns true,
 * or returns false to let the next handler (and finally the V2 routes) have it.
 */
export type HttpRouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface HttpServerOptions {
  host: ModelHost;
  pipeline: ProcessingPipeline;
  logger: Logger;
  serverName: string;
  serverVersion: string;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  /** False while starting or draining. */
  isReady: () => boolean;
  /** Tried in order before the V2 routes. */
  handlers?: HttpRouteHandler[];
}

export class InferenceHttpServer {
  private readonly server: Server;
  private inFlight = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly o: HttpServerOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.requestTimeout = o.requestTimeoutMs;
    this.server.headersTimeout = Math.min(60_000, o.requestTimeoutMs);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new WhaleError('ERR_CONFIG', `http: cannot listen on ${host}:${port}: ${err.message}`, { field: 'http.port', cause: err }));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Adds a route handler (before start, or at any time: later requests see it). */
  addHandler(h: HttpRouteHandler): void {
    (this.o.handlers ??= []).push(h);
  }

  /** Stops accepting connections, lets requests in flight finish for up to graceMs, then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await Promise.race([new Promise<void>((r) => (this.idle = r)), new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      for (const h of this.o.handlers ?? []) {
        if (await h(req, res, url)) return;
      }
      const { status, body } = await this.route(req);
      sendJson(res, status, body);
    } catch (err) {
      const status = sendError(res, err);
      if (status >= 500 && status !== 503 && status !== 504) this.o.logger.error('request failed', { url: req.url, error: (err as Error).message });
    } finally {
      if (--this.inFlight === 0) this.idle?.();
    }
  }

  private async route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'v2') throw new HttpError(404, `no route ${url.pathname} (this server speaks the V2 inference protocol under /v2)`);
    const method = req.method ?? 'GET';
    const expect = (m: 'GET' | 'POST') => {
      if (method !== m) throw new HttpError(405, `${url.pathname} accepts ${m}, not ${method}`);
    };
    if (parts.length === 1) {
      expect('GET');
      return { status: 200, body: { name: this.o.serverName, version: this.o.serverVersion, extensions: ['statistics'] } };
    }
    if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready')) {
      expect('GET');
      if (parts[2] === 'live') return { status: 200, body: { live: true } };
      const ready = this.o.isReady() && this.o.host.allReady();
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
    const model = this.o.host.get(name);
    if (version !== undefined && version !== model.version) {
      throw new WhaleError('ERR_MODEL_NOT_FOUND', `model '${name}' has no version '${version}' (serving ${model.version})`, { field: 'version' });
    }
    const action = rest.join('/');
    if (action === '') {
      expect('GET');
      const spec = (t: { name: string; datatype: string; shape: number[] }) => ({ name: t.name, datatype: t.datatype, shape: t.shape });
      return {
        status: 200,
        body: { name, versions: [model.version], platform: model.platform, inputs: model.inputs.map(spec), outputs: model.outputs.map(spec) },
      };
    }
    if (action === 'ready') {
      expect('GET');
      return { status: 200, body: { name, ready: this.o.isReady() && this.o.host.isReady(name) } };
    }
    if (action === 'stats') {
      expect('GET');
      return { status: 200, body: { model_stats: [this.o.host.status(name)] } };
    }
    if (action === 'infer') {
      expect('POST');
      return { status: 200, body: await this.infer(req, name) };
    }
    throw new HttpError(404, `no route ${url.pathname}`);
  }

  private async infer(req: IncomingMessage, name: string): Promise<unknown> {
    if (!this.o.isReady()) throw new WhaleError('ERR_SHUTTING_DOWN', 'the server is not accepting requests (starting or shutting down)', { retriable: true });
    const body = await readJson(req, this.o.maxBodyBytes);
    const request = parseInferRequest(body);
    const params = request.parameters ?? {};
    const level = params.level;
    if (level !== undefined && !LEVELS.includes(level as Level)) {
      throw new WhaleError('ERR_INVALID_ARG', `parameters.level: must be one of ${LEVELS.join(', ')}`, { field: 'parameters.level' });
    }
    const abort = new AbortController();
    req.once('close', () => {
      if (!req.complete || req.destroyed) abort.abort();
    });
    const result = await this.o.pipeline.processRequest({
      model: name,
      inputs: toNamedTensors(request.inputs),
      signal: abort.signal,
      ...(request.id === undefined ? {} : { requestId: request.id }),
      ...(level === undefined ? {} : { level: level as Level }),
      ...optionalParam(params, 'tenant', 'string'),
      ...optionalParam(params, 'priority', 'number'),
      ...optionalParam(params, 'timeout_ms', 'number', 'timeoutMs'),
      ...optionalParam(params, 'complexity', 'number'),
    });
    return {
      model_name: result.model,
      model_version: result.modelVersion,
      ...(request.id === undefined ? {} : { id: request.id }),
      parameters: { level: result.level, cached: result.cached, models: result.models.join(','), device: result.device },
      outputs: fromNamedTensors(result.outputs, request.outputs),
    };
  }
}

function optionalParam(params: Record<string, unknown>, key: string, type: 'string' | 'number', as = key): Record<string, unknown> {
  const v = params[key];
  if (v === undefined) return {};
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
    throw new WhaleError('ERR_INVALID_ARG', `parameters.${key}: must be a ${type === 'number' ? 'finite number' : 'string'}`, { field: `parameters.${key}` });
  }
  return { [as]: v };
}
