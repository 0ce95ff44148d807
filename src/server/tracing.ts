/**
 * The OpenTelemetry SDK for a node (`whale start` with tracing on): a
 * NodeTracerProvider registered globally (AsyncLocalStorage context, W3C
 * trace-context propagation), a parent-based ratio sampler, and spans
 * batched to an OTLP/HTTP collector. Everything else records through
 * @opentelemetry/api (src/common/trace.ts), which is a no-op until this runs.
 * Spans: `GET /v2/...` (HTTP, server), `inference.ModelInfer` (gRPC), `whale.pipeline`,
 * `whale.scheduler.task`, `whale.model.execute`, `<topic> publish` / `<topic> process` (the bus).
 * The SDK's modules are loaded when tracing starts (about half a second), never at import.
 */
import { context, diag, DiagLogLevel, propagation, trace, type DiagLogger } from '@opentelemetry/api';
import type { NodeTracerProvider, SpanExporter } from '@opentelemetry/sdk-trace-node';

import { WhaleError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { setTracingActive } from '../common/trace.js';
import type { TracingConfig } from '../config/tracing.js';

export interface TracingOptions {
  /** Instead of the OTLP exporter (tests: InMemorySpanExporter). */
  exporter?: SpanExporter;
  /** Export each span when it ends instead of in batches (default: only with an exporter given). */
  simple?: boolean;
  /** Also the `service.instance.id` resource attribute (the node id). */
  instanceId?: string;
  /** Where the SDK's own warnings and errors go (an unreachable collector, …), at most one line a minute (default: a 'tracing' logger). */
  logger?: Logger;
}

export interface Tracing {
  readonly provider: NodeTracerProvider;
  /** Exports what is buffered now. */
  flush(): Promise<void>;
  /** Flushes (for up to 5 s: an unreachable collector does not hold a shutdown), then unregisters the SDK (the API is a no-op again); never throws. */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

const SHUTDOWN_FLUSH_MS = 5_000;

let starting = false;

/** Registers the SDK for this process; one at a time (ERR_INVALID_STATE while another runs). */
export async function startTracing(
  config: Pick<TracingConfig, 'tracesUrl' | 'serviceName' | 'sampleRatio' | 'headers'>,
  o: TracingOptions = {},
): Promise<Tracing> {
  if (current || starting) throw new WhaleError('ERR_INVALID_STATE', 'tracing is already started in this process');
  starting = true;
  try {
    return await start(config, o);
  } finally {
    starting = false;
  }
}

async function start(
  config: Pick<TracingConfig, 'tracesUrl' | 'serviceName' | 'sampleRatio' | 'headers'>,
  o: TracingOptions,
): Promise<Tracing> {
  const [
    { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler },
    { resourceFromAttributes },
  ] = await Promise.all([import('@opentelemetry/sdk-trace-node'), import('@opentelemetry/resources')]);
  const { OTLPTraceExporter } = o.exporter
    ? { OTLPTraceExporter: undefined }
    : await import('@opentelemetry/exporter-trace-otlp-http');
  const exporter = o.exporter ?? new OTLPTraceExporter!({ url: config.tracesUrl, headers: { ...config.headers } });
  const processor =
    (o.simple ?? o.exporter !== undefined) ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': config.serviceName,
      ...(o.instanceId ? { 'service.instance.id': o.instanceId } : {}),
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [processor],
  });
  provider.register();
  const logger = o.logger ?? createLogger('tracing');
  diag.setLogger(throttled(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  setTracingActive(true);
  let stopped = false;
  const t: Tracing = {
    provider,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      if (stopped) return;
      stopped = true;
      setTracingActive(false);
      let timer: NodeJS.Timeout | undefined;
      try {
        const flushed = provider.shutdown().then(
          () => true,
          (err: unknown) =>
            void logger.warn('tracing: the last spans were not exported', {
              error: (err as Error)?.message ?? String(err),
            }),
        );
        const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), SHUTDOWN_FLUSH_MS)));
        if ((await Promise.race([flushed, late])) === false)
          logger.warn(
            `tracing: the collector did not take the last spans within ${SHUTDOWN_FLUSH_MS} ms; they are dropped`,
          );
      } finally {
        clearTimeout(timer);
        trace.disable();
        context.disable();
        propagation.disable();
        diag.disable();
        if (current === t) current = undefined;
      }
    },
  };
  current = t;
  return t;
}

/** The SDK's diagnostics as log lines: warnings and errors only, the first at once, then at most one a minute (with how many were left out). */
function throttled(logger: Logger, everyMs = 60_000): DiagLogger {
  let last = -Infinity;
  let skipped = 0;
  const line =
    (level: 'warn' | 'error') =>
    (message: string, ...args: unknown[]) => {
      const now = performance.now();
      if (now - last < everyMs) {
        skipped++;
        return;
      }
      last = now;
      const detail = args
        .map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : ''))
        .filter(Boolean)
        .join('; ');
      logger[level](`tracing: ${message}`, {
        ...(detail ? { detail: detail.slice(0, 500) } : {}),
        ...(skipped ? { skipped } : {}),
      });
      skipped = 0;
    };
  const none = () => undefined;
  return { error: line('error'), warn: line('warn'), info: none, debug: none, verbose: none };
}
