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
import { context, propagation, trace } from '@opentelemetry/api';
import type { NodeTracerProvider, SpanExporter } from '@opentelemetry/sdk-trace-node';

import { WhaleError } from '../common/errors.js';
import { setTracingActive } from '../common/trace.js';
import type { TracingConfig } from '../config/tracing.js';

export interface TracingOptions {
  /** Instead of the OTLP exporter (tests: InMemorySpanExporter). */
  exporter?: SpanExporter;
  /** Export each span when it ends instead of in batches (default: only with an exporter given). */
  simple?: boolean;
  /** Also the `service.instance.id` resource attribute (the node id). */
  instanceId?: string;
}

export interface Tracing {
  readonly provider: NodeTracerProvider;
  /** Exports what is buffered now. */
  flush(): Promise<void>;
  /** Flushes, then unregisters the SDK (the API is a no-op again). */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

let starting = false;

/** Registers the SDK for this process; one at a time (ERR_INVALID_STATE while another runs). */
export async function startTracing(config: Pick<TracingConfig, 'tracesUrl' | 'serviceName' | 'sampleRatio' | 'headers'>, o: TracingOptions = {}): Promise<Tracing> {
  if (current || starting) throw new WhaleError('ERR_INVALID_STATE', 'tracing is already started in this process');
  starting = true;
  try {
    return await start(config, o);
  } finally {
    starting = false;
  }
}

async function start(config: Pick<TracingConfig, 'tracesUrl' | 'serviceName' | 'sampleRatio' | 'headers'>, o: TracingOptions): Promise<Tracing> {
  const [{ BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ]);
  const { OTLPTraceExporter } = o.exporter ? { OTLPTraceExporter: undefined } : await import('@opentelemetry/exporter-trace-otlp-http');
  const exporter = o.exporter ?? new OTLPTraceExporter!({ url: config.tracesUrl, headers: { ...config.headers } });
  const processor = (o.simple ?? o.exporter !== undefined) ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName, ...(o.instanceId ? { 'service.instance.id': o.instanceId } : {}) }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [processor],
  });
  provider.register();
  setTracingActive(true);
  let stopped = false;
  const t: Tracing = {
    provider,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      if (stopped) return;
      stopped = true;
      setTracingActive(false);
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
        if (current === t) current = undefined;
      }
    },
  };
  current = t;
  return t;
}
