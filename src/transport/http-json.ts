/**
 * JSON over node:http for every route of the server (V2 inference, routing,
 * resources, monitoring, the dashboard): reading a bounded JSON body, sending a
 * JSON answer, and turning an error into a status and body through ONE table
 * from WhaleError code to HTTP status. (It lives in transport, below core,
 * because the dashboard's routes in core/monitoring use it too.)
 *
 * Error bodies: `{ error, code, field? }` for a WhaleError, `{ error }` for an
 * HttpError (a route's own 404/405), and `{ error: 'internal error: …' }` with
 * status 500 for anything else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError, type WhaleErrorCode } from '../common/errors.js';
import { parseJsonNumberArrays } from './json-number-arrays.js';

/**
 * The status each error code answers with. Request problems are 4xx, a
 * server that cannot take the request now is 503 (retry), a deadline is 504,
 * everything that is the server's own fault is 500.
 */
export const HTTP_STATUS: Readonly<Record<WhaleErrorCode, number>> = {
  // the request is wrong
  ERR_INVALID_ARG: 400,
  ERR_SHAPE_MISMATCH: 400,
  ERR_NON_FINITE: 400,
  ERR_INVALID_MESSAGE: 400,
  ERR_BAD_SIGNATURE: 401,
  ERR_UNKNOWN_IDENTITY: 401,
  ERR_UNAUTHENTICATED: 401,
  ERR_REVOKED: 403,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_MODEL_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_REPLAY: 409,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_QUOTA_EXCEEDED: 429,
  /** The client went away (nginx's "client closed request"). */
  ERR_CANCELLED: 499,
  // the server cannot take it now: retry
  ERR_MODEL_NOT_READY: 503,
  ERR_MODEL_REMOVED: 503,
  ERR_OVERLOADED: 503,
  ERR_SHUTTING_DOWN: 503,
  ERR_UNAVAILABLE: 503,
  ERR_DEADLINE_EXCEEDED: 504,
  ERR_TIMEOUT: 504,
  // the server's own failure
  ERR_INVALID_OPTION: 500,
  ERR_CONFIG: 500,
  ERR_NO_CLIENTS: 500,
  ERR_INVALID_WEIGHT: 500,
  ERR_BELOW_THRESHOLD: 500,
  ERR_DEVICE_UNAVAILABLE: 500,
  ERR_CUDA: 500,
  ERR_UNSUPPORTED: 500,
  ERR_OUT_OF_MEMORY: 500,
  ERR_NATIVE: 500,
  ERR_NATIVE_NOT_FOUND: 500,
  ERR_NATIVE_LOAD: 500,
  ERR_TRUNCATED: 500,
  ERR_BAD_MAGIC: 500,
  ERR_UNKNOWN_VERSION: 500,
  ERR_UNKNOWN_CODEC: 500,
  ERR_CORRUPT: 500,
  ERR_CHECKSUM: 500,
  ERR_BUS_CLOSED: 500,
  ERR_INVALID_STATE: 500,
  ERR_MODEL_LOAD: 500,
  ERR_MODEL_RUN: 500,
  ERR_EXECUTION_FAILED: 500,
};

/** A route's own answer that is not a WhaleError (unknown path 404, wrong method 405). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorAnswer {
  status: number;
  body: { error: string; code?: WhaleErrorCode; field?: string };
}

/** The status and body for an error, by the table (500 for what is not a WhaleError or HttpError). */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (err instanceof HttpError) return { status: err.status, body: { error: err.message } };
  if (err instanceof WhaleError) {
    return {
      status: HTTP_STATUS[err.code] ?? 500,
      body: { error: err.message, code: err.code, ...(err.field ? { field: err.field } : {}) },
    };
  }
  return { status: 500, body: { error: `internal error: ${(err as Error)?.message ?? String(err)}` } };
}

/** Sends `body` as JSON; always returns true (a handled route). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): true {
  const text = JSON.stringify(body);
  const all: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  };
  for (const name of Object.keys(headers)) all[name] = headers[name]!;
  res.writeHead(status, all);
  res.end(text);
  return true;
}

/**
 * Answers an error (unless the answer has started): the table's status, a
 * Retry-After (seconds) when the error carries retryAfterMs, and
 * `connection: close` when the error says the rest of the body will not be
 * read (details.closeConnection: a body past the discard bound). Returns the status.
 */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): number {
  const { status, body } = errorAnswer(err);
  if (res.headersSent) return status;
  const extra: Record<string, string> = { ...headers };
  if (err instanceof WhaleError && err.details.closeConnection === true) extra.connection = 'close';
  const retryAfterMs = err instanceof WhaleError ? Number(err.details.retryAfterMs) : NaN;
  if (Number.isFinite(retryAfterMs) && retryAfterMs >= 0) extra['retry-after'] = String(Math.ceil(retryAfterMs / 1000));
  sendJson(res, status, body, extra);
  return status;
}

/**
 * The server-wide budget of request-body bytes being received and decoded
 * (issue 23 item 6): a body is admitted only while the bytes of every body
 * held (received, or being parsed and answered) stay within `limit`; the bytes
 * are given back when the answer is done.
 */
export class ByteBudget {
  private held = 0;
  constructor(readonly limit: number) {}

  /** Takes n bytes, or returns false (and takes nothing) when that would pass the limit. */
  take(n: number): boolean {
    if (n > 0 && this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held = Math.max(0, this.held - n);
  }

  get used(): number {
    return this.held;
  }
}

/** What readJson applies to one request, beyond the route's own body limit (set by the server per request). */
export interface RequestLimits {
  /** The server-wide budget (absent: none). */
  budget?: ByteBudget;
  /** Deepest nesting of arrays/objects a JSON body may have (default 64). */
  maxDepth?: number;
  /** An oversized body up to this many bytes is read and dropped before the 413, so a client that sends before it reads gets the answer (default 32 MiB). */
  maxDiscardBytes?: number;
}

/** A request's share of the server's limits: the server's object itself, and the budget bytes this body holds. */
interface HeldLimits {
  limits: RequestLimits;
  reserved: number;
}

const requestLimits = new WeakMap<IncomingMessage, HeldLimits>();

/**
 * Applies `limits` to the request's body reads; returns the function that
 * gives back the budget bytes its body took (call it when the answer is done).
 */
export function limitRequest(req: IncomingMessage, limits: RequestLimits): () => void {
  const held: HeldLimits = { limits, reserved: 0 };
  requestLimits.set(req, held);
  return () => {
    limits.budget?.give(held.reserved);
    held.reserved = 0;
  };
}

/** Longest string a client may give where the server keeps it (request ids, tenants, sessions, names in a URL): longer is a 400. */
export const MAX_CLIENT_STRING_LENGTH = 256;
export const DEFAULT_MAX_JSON_DEPTH = 64;
export const DEFAULT_MAX_DISCARD_BYTES = 32 * 1024 * 1024;

/** The request's URL (400 when it cannot be parsed). */
export function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    throw new HttpError(400, 'the request URL cannot be parsed');
  }
}

/** decodeURIComponent of one path segment; a bad percent-encoding is a 400 (ERR_INVALID_ARG, field url), not a 500. */
export function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new WhaleError('ERR_INVALID_ARG', `url: bad percent-encoding in the path segment '${segment.slice(0, 64)}'`, {
      field: 'url',
    });
  }
}

/**
 * Whether the JSON text nests arrays/objects deeper than maxDepth: one pass
 * over the bytes (strings skipped), before any parsing, so a body nested
 * 200 000 deep is a 400 and never reaches a recursive walk.
 */
export function jsonTooDeep(buf: Uint8Array, maxDepth: number): boolean {
  // Depth grows only at '[' and '{': a body with at most maxDepth of them (a V2 tensor body has a handful
  // among thousands of digits) cannot be too deep, and memchr-speed counting says so without the byte loop.
  if (openingBrackets(buf, maxDepth + 1) <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** How many '[' and '{' the bytes hold, counting no further than `stop`. */
function openingBrackets(buf: Uint8Array, stop: number): number {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let n = 0;
  for (const c of [0x5b, 0x7b]) {
    for (let i = b.indexOf(c); i !== -1 && n < stop; i = b.indexOf(c, i + 1)) n++;
  }
  return n;
}

function tooLarge(maxBytes: number, declared: number | undefined, close: boolean): WhaleError {
  const size = declared === undefined ? 'the request body' : `the request body (${declared} bytes)`;
  return new WhaleError('ERR_PAYLOAD_TOO_LARGE', `${size} exceeds the limit of ${maxBytes} bytes`, {
    field: 'body',
    ...(close ? { closeConnection: true } : {}),
  });
}

function overBudget(budget: ByteBudget, n: number): WhaleError {
  return new WhaleError(
    'ERR_OVERLOADED',
    `the server is receiving ${budget.used} bytes of request bodies (budget ${budget.limit}); this body (${n} bytes) was not read: retry later`,
    {
      field: 'body',
      retriable: true,
      retryAfterMs: 1000,
    },
  );
}

/** Reads and drops the rest of a body (up to `bound` bytes in all, else the connection is cut). */
function discard(req: IncomingMessage, already: number, bound: number): void {
  let seen = already;
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > bound) req.socket?.destroy();
  });
  req.resume();
}

/**
 * The request body parsed as JSON. ERR_PAYLOAD_TOO_LARGE (field body) past
 * maxBytes (by Content-Length before reading, or while reading): the body is
 * then read and dropped up to maxDiscardBytes so the 413 reaches a client that
 * sends before it reads (past that bound the connection is closed).
 * ERR_OVERLOADED (503, Retry-After) when the server-wide byte budget cannot
 * take the body: decided from Content-Length before a byte is kept.
 * ERR_INVALID_ARG when it is not JSON or nests deeper than maxDepth.
 */
export function readJson(
  req: IncomingMessage,
  maxBytes: number,
  opts: { numberArraysUnder?: string } = {},
): Promise<unknown> {
  return readBody(req, maxBytes).then((buf) => parseJsonBody(buf, req, 'body', opts));
}

/**
 * Bytes as JSON: ERR_INVALID_ARG (naming `field`) when they are not JSON or nest deeper than
 * the request's maxDepth (the server's limit; DEFAULT_MAX_JSON_DEPTH without a request).
 * `numberArraysUnder`: big flat number arrays under that key come back as Float64Array (json-number-arrays.ts).
 */
export function parseJsonBody(
  buf: Uint8Array,
  req?: IncomingMessage,
  field = 'body',
  opts: { numberArraysUnder?: string } = {},
): unknown {
  const maxDepth = (req && requestLimits.get(req)?.limits.maxDepth) ?? DEFAULT_MAX_JSON_DEPTH;
  if (jsonTooDeep(buf, maxDepth))
    throw new WhaleError('ERR_INVALID_ARG', `${field}: JSON nested deeper than ${maxDepth} levels`, { field });
  try {
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (opts.numberArraysUnder !== undefined) return parseJsonNumberArrays(b, opts.numberArraysUnder);
    return JSON.parse(b.toString('utf8'));
  } catch (err) {
    throw new WhaleError('ERR_INVALID_ARG', `${field}: not valid JSON (${(err as Error).message})`, { field });
  }
}

/**
 * The request body as bytes, under the same limits as readJson (413 past maxBytes, the
 * server-wide byte budget, the discard bound). With `pad`, a body of declared length is
 * received `pad` bytes into a fresh ArrayBuffer (so that a binary section after a header of
 * known length starts 8-byte aligned and typed arrays can view it without a copy).
 */
export function readBody(req: IncomingMessage, maxBytes: number, opts: { pad?: number } = {}): Promise<Buffer> {
  const held = requestLimits.get(req);
  const budget = held?.limits.budget;
  const bound = Math.max(maxBytes, held?.limits.maxDiscardBytes ?? DEFAULT_MAX_DISCARD_BYTES);
  const header = req.headers['content-length'];
  const declared = header === undefined ? undefined : Number(header);
  if (declared !== undefined && Number.isFinite(declared) && declared > maxBytes) {
    const close = declared > bound;
    if (close) req.resume();
    else discard(req, 0, bound);
    return Promise.reject(tooLarge(maxBytes, declared, close));
  }
  const known = declared !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
  if (held && budget && known !== undefined) {
    if (!budget.take(known)) {
      discard(req, 0, bound);
      return Promise.reject(overBudget(budget, known));
    }
    held.reserved += known;
  }
  return new Promise((resolve, reject) => {
    // A body of declared size that arrives in one chunk is that chunk (no copy; unless `pad` asks for an
    // aligned copy); one that arrives in several goes into one buffer of the declared size (no chunk
    // list and concat copy); a body of unknown size is a list of chunks.
    const pad = opts.pad ?? 0;
    let whole: Buffer | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (err: WhaleError) => {
      failed = true;
      chunks.length = 0;
      discard(req, size, bound);
      reject(err);
    };
    req.on('data', (c: Buffer) => {
      if (failed) return;
      if (size + c.length > maxBytes || (known !== undefined && size + c.length > known))
        return fail(tooLarge(maxBytes, undefined, size + c.length > bound));
      if (held && budget && known === undefined) {
        if (!budget.take(c.length)) return fail(overBudget(budget, size + c.length));
        held.reserved += c.length;
      }
      if (known !== undefined && (pad > 0 || size > 0 || c.length < known)) {
        if (!whole) {
          whole = Buffer.allocUnsafeSlow(known + pad).subarray(pad);
          if (chunks.length > 0) chunks[0]!.copy(whole, 0);
          chunks.length = 0;
        }
        c.copy(whole, size);
      } else chunks.push(c);
      size += c.length;
    });
    req.once('end', () => {
      if (failed) return;
      const buf = whole ? whole.subarray(0, size) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks.length = 0;
      resolve(buf);
    });
    req.once('error', reject);
  });
}
