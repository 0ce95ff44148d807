/**
 * Tracing through @opentelemetry/api only: without an SDK registered every
 * call here is a no-op, and the whole module does nothing until the server
 * turns tracing on (setTracingActive, called by src/server/tracing.ts once it
 * registered the SDK), so the request path pays one boolean test when off.
 * Core, transport and server record their spans through these helpers:
 *
 * - withSpan: runs a function in a child span of the active context;
 * - injectTraceHeaders / extractTraceContext: W3C trace context (`traceparent`,
 *   `tracestate`) in a message's headers, so a request served by another node
 *   is one trace.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';

export { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span };

/** The empty context: no span, no baggage. */
export const ROOT_TRACE_CONTEXT: Context = ROOT_CONTEXT;

export const TRACER_NAME = 'smart-whale';

let active = false;
let cachedTracer: Tracer | undefined;

/** Turned on by the server's tracing setup after it registered the SDK (and off again at its shutdown). */
export function setTracingActive(on: boolean): void {
  active = on;
  cachedTracer = undefined;
}

export function tracingActive(): boolean {
  return active;
}

export function tracer(): Tracer {
  return (cachedTracer ??= trace.getTracer(TRACER_NAME));
}

/** Ends a span with the outcome of what it covered (an error sets status ERROR and records the exception). */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    const e = err instanceof Error ? err : new Error(String(err));
    span.recordException(e);
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') span.setAttribute('whale.error.code', code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }
  span.end();
}

/**
 * Runs `fn` in a new span (child of the active one, or of `opts.parent`), ending it when `fn`
 * settles; with tracing off it only calls `fn`.
 */
export async function withSpan<T>(
  name: string,
  opts: SpanOptions & { parent?: Context },
  fn: (span: Span | undefined) => Promise<T> | T,
): Promise<T> {
  if (!active) return fn(undefined);
  const { parent = context.active(), ...spanOptions } = opts;
  const span = tracer().startSpan(name, spanOptions, parent);
  try {
    const r = await context.with(trace.setSpan(parent, span), () => fn(span));
    endSpan(span);
    return r;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}

/** Starts a span (child of the active context) that the caller ends; undefined with tracing off. */
export function startSpan(name: string, opts: SpanOptions = {}, parent: Context = context.active()): Span | undefined {
  return active ? tracer().startSpan(name, opts, parent) : undefined;
}

/** Runs `fn` with `span` as the active span (just `fn` without one). */
export function runInSpan<T>(span: Span | undefined, fn: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** True when tracing is on and a span is active: work done now belongs to a trace. */
export function inTrace(): boolean {
  return active && trace.getSpan(context.active()) !== undefined;
}

/** The trace id of the active span, when tracing is on and the span is sampled. */
export function activeTraceId(): string | undefined {
  if (!active) return undefined;
  const sc = trace.getSpan(context.active())?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

const setter = {
  set(carrier: Record<string, string>, key: string, value: string) {
    carrier[key] = value;
  },
};

const getter = {
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
  get: (carrier: Record<string, string>, key: string) => carrier[key],
};

/**
 * `headers` with the trace context of `ctx` (default: the active one) added (`traceparent`,
 * `tracestate`); the same object when tracing is off or nothing is being traced.
 */
export function injectTraceHeaders(
  headers: Record<string, string>,
  ctx: Context = context.active(),
): Record<string, string> {
  if (!active || !trace.getSpan(ctx)) return headers;
  const out = { ...headers };
  propagation.inject(ctx, out, setter);
  return out;
}

/**
 * The context a message's headers carry, on top of the ROOT context (not the active one: an
 * in-process bus delivers inside the publisher's async context, which must not leak into the
 * consumer's trace). ROOT_CONTEXT when the headers carry none or tracing is off.
 */
export function extractTraceContext(headers: Record<string, string> | undefined): Context {
  if (!active || !headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}
