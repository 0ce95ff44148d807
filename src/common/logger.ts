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

export function createLogger(
  component: string,
  level: LogLevel = env.logLevel ?? 'info',
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const log = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(
      JSON.stringify({
        time: new Date().toISOString(),
        level: lvl,
        component,
        msg,
        ...logContext.getStore(),
        ...fields,
      }),
    );
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
