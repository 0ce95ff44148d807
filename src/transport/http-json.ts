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
    return { status: HTTP_STATUS[err.code] ?? 500, body: { error: err.message, code: err.code, ...(err.field ? { field: err.field } : {}) } };
  }
  return { status: 500, body: { error: `internal error: ${(err as Error)?.message ?? String(err)}` } };
}

/** Sends `body` as JSON; always returns true (a handled route). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): true {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
  return true;
}

/**
 * Answers an error (unless the answer has started): the table's status, a
 * Retry-After (seconds) when the error carries retryAfterMs, and
 * `connection: close` after a body too large to read. Returns the status.
 */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): number {
  const { status, body } = errorAnswer(err);
  if (res.headersSent) return status;
  const extra: Record<string, string> = { ...headers };
  if (status === 413) extra.connection = 'close';
  const retryAfterMs = err instanceof WhaleError ? Number(err.details.retryAfterMs) : NaN;
  if (Number.isFinite(retryAfterMs) && retryAfterMs >= 0) extra['retry-after'] = String(Math.ceil(retryAfterMs / 1000));
  sendJson(res, status, body, extra);
  return status;
}

/**
 * The request body parsed as JSON: ERR_PAYLOAD_TOO_LARGE (field body) past
 * maxBytes (by Content-Length before reading, or while reading), ERR_INVALID_ARG
 * when it is not JSON.
 */
export function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new WhaleError('ERR_PAYLOAD_TOO_LARGE', `the request body (${declared} bytes) exceeds the limit of ${maxBytes} bytes`, { field: 'body' }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.resume();
        reject(new WhaleError('ERR_PAYLOAD_TOO_LARGE', `the request body exceeds the limit of ${maxBytes} bytes`, { field: 'body' }));
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new WhaleError('ERR_INVALID_ARG', `body: not valid JSON (${(err as Error).message})`, { field: 'body' }));
      }
    });
    req.once('error', reject);
  });
}
