/**
 * A minimal structured logger: JSON lines on stderr, filtered by WHALE_LOG_LEVEL (default 'info').
 * Fields of the current log context (withLogContext: the HTTP request id, the trace id) go into every
 * line written inside it, whichever logger writes it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import { env } from './env.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** The header carrying a request id (HTTP, gRPC metadata, bus messages), and the ids taken from outside: at most 128 of [A-Za-z0-9._:/+=@-]. */
export const REQUEST_ID_HEADER = 'x-request-id';
export const SAFE_REQUEST_ID = /^[A-Za-z0-9._:/+=@-]{1,128}$/;

const logContext = new AsyncLocalStorage<Readonly<Record<string, unknown>>>();

/** Runs `fn` with `fields` (on top of the current context's) added to every log line written inside it. */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  const outer = logContext.getStore();
  return logContext.run(outer ? { ...outer, ...fields } : fields, fn);
}

/** The fields of the current log context (empty outside one). */
export function logContextFields(): Readonly<Record<string, unknown>> {
  return logContext.getStore() ?? {};
}

/**
 * Lines for stderr, written together once per event-loop turn: a busy server's access log is one
 * `write` per turn, not one per request (stderr to a file or a pipe is synchronous on Linux). The
 * rest is written when the process exits, however it exits short of a kill.
 */
let stderrLines: string[] = [];
let stderrFlushQueued = false;
let exitFlushRegistered = false;

function flushStderr(): void {
  stderrFlushQueued = false;
  if (stderrLines.length === 0) return;
  const text = stderrLines.join('');
  stderrLines = [];
  process.stderr.write(text);
}

function writeStderrLine(line: string): void {
  stderrLines.push(`${line}\n`);
  if (stderrFlushQueued) return;
  if (!exitFlushRegistered) {
    exitFlushRegistered = true;
    process.on('exit', flushStderr);
  }
  stderrFlushQueued = true;
  setImmediate(flushStderr).unref();
}

export function createLogger(
  component: string,
  level: LogLevel = env.logLevel ?? 'info',
  write: (line: string) => void = writeStderrLine,
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const log = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const line: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, component, msg };
    const context = logContext.getStore();
    if (context) copyFields(line, context);
    if (fields) copyFields(line, fields);
    write(JSON.stringify(line));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/**
 * What `{ ...line, ...from }` does, without V8's slow path for a second spread in one literal (a few µs a
 * line, measured on the request path); a '__proto__' key stays a field, as a spread keeps it.
 */
function copyFields(line: Record<string, unknown>, from: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(from)) {
    if (key === '__proto__')
      Object.defineProperty(line, key, { value: from[key], enumerable: true, writable: true, configurable: true });
    else line[key] = from[key];
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
