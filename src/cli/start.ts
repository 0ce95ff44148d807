import { isWhaleError } from '../common/errors.js';
import { loadConfig } from '../config/whale-config.js';
import { packageVersion } from './info.js';
import type { CliIO } from './main.js';

export const START_USAGE = `Usage: whale start [--config FILE] [--port N] [--check]

Serves the configured models (default: the shipped MNIST classifier as 'mnist') over HTTP
(the V2 inference protocol) and the bus (user requests on whale.user.requests), and runs the
federation, user and data-request services, until SIGINT/SIGTERM. The first signal drains
in-flight requests (up to shutdownGraceMs) and exits 0; a second one (a second or more later)
exits at once (130). A model that cannot be loaded (missing, empty, truncated or not a model)
stops the start with exit 2 naming it, unless the configuration marks it "optional": true; an
optional one is retried with backoff and served once it loads.

Options:
  --config FILE   configuration (default: ./whale.config.json when present, or $WHALE_CONFIG)
  --port N        HTTP port (default: $WHALE_HTTP_PORT or 8080)
  --check         validate the configuration and load every model (optional ones too), then exit:
                  0 when all is well, 2 naming the first problem; starts no server, bus or service
  -h, --help      show this help

Environment: KAFKA_BROKERS (else the in-process bus), REDIS_URL (else in-memory state),
WHALE_HTTP_PORT, WHALE_HTTP_HOST (default 127.0.0.1), WHALE_NODE_ID, WHALE_LOG_LEVEL.
`;

export interface StartOptions {
  config?: string;
  port?: number;
  /** Validate the configuration and load every model, then return 0 or 2 (nothing is served). */
  check?: boolean;
}

/** `whale start --check`: the configuration and every model, loaded and unloaded again. */
async function checkConfig(io: CliIO, opts: StartOptions): Promise<number> {
  const config = loadConfig(opts.config === undefined ? {} : { path: opts.config });
  const { createModel } = await import('../models/index.js');
  const failed: string[] = [];
  for (const m of config.models) {
    const model = createModel(m);
    try {
      await model.load();
      io.out(
        `model '${m.name}' (${m.adapter}, version ${m.version}): loads; inputs ${model.inputs.map((t) => `${t.name}${JSON.stringify(t.shape)}`).join(', ')}\n`,
      );
    } catch (err) {
      failed.push(m.name);
      io.err(
        `whale: model '${m.name}'${m.optional ? ' (optional)' : ''} cannot be loaded: ${(err as Error).message}\n`,
      );
    } finally {
      await model.unload().catch(() => undefined);
    }
  }
  if (failed.length > 0) return 2;
  io.out(`config ${config.source ?? '(built-in defaults)'}: ok, ${config.models.length} model(s) load\n`);
  return 0;
}

/** Runs a node until a signal (or `signal` aborts), then shuts it down in order. */
export async function startCommand(io: CliIO, opts: StartOptions = {}, signal?: AbortSignal): Promise<number> {
  if (opts.check) return checkConfig(io, opts);
  const { WhaleServer } = await import('../server/whale-server.js');
  const config = loadConfig(opts.config === undefined ? {} : { path: opts.config });
  if (opts.port !== undefined) config.http.port = opts.port;
  const { defaultExtensions } = await import('../server/default-extensions.js');
  const server = new WhaleServer({
    config,
    serverVersion: packageVersion(),
    extensions: await defaultExtensions(config),
  });
  // OpenTelemetry (off by default): the SDK is registered before the first request, shut down (flushed) after the last.
  const tracing = config.tracing?.enabled
    ? await (await import('../server/tracing.js')).startTracing(config.tracing, { instanceId: server.messaging.nodeId })
    : undefined;
  const stopRequested = waitForStop(signal);
  let url: string;
  try {
    ({ url } = await server.start());
  } catch (err) {
    stopRequested.dispose();
    await tracing?.shutdown().catch(() => undefined);
    // A model that cannot load is a configuration problem: exit 2 naming it (docs/cli.md).
    if (!isWhaleError(err, 'ERR_MODEL_LOAD')) throw err;
    io.err(`whale: ${err.message} [${err.code}]\n`);
    return 2;
  }
  const bus = server.messaging.bus.kind === 'kafka' ? 'Kafka' : 'in-process';
  const names = server.host.names();
  const waiting = names.filter((n) => !server.host.isReady(n));
  for (const n of waiting)
    io.err(
      `whale start: optional model '${n}' is not loaded (${server.host.loadError(n) ?? 'not ready'}); retrying in the background\n`,
    );
  io.out(
    `smart-whale: serving ${names.filter((n) => server.host.isReady(n)).join(', ') || 'no model yet'}${waiting.length ? ` (not loaded yet: ${waiting.join(', ')})` : ''} on ${url} (V2 inference protocol)${server.grpcAddress ? `, gRPC on ${server.grpcAddress}` : ''} and the ${bus} bus ` +
      `as node '${server.messaging.nodeId}'${config.source ? ` (config ${config.source})` : ''}; Ctrl-C to stop\n`,
  );
  if (config.tracing?.enabled)
    io.out(
      `smart-whale: tracing to ${config.tracing.tracesUrl} as service '${config.tracing.serviceName}' (sampling ${config.tracing.sampleRatio})\n`,
    );
  const how = await stopRequested.promise;
  io.out(
    `smart-whale: ${how}: shutting down (draining for up to ${config.shutdownGraceMs} ms; a second signal exits at once)\n`,
  );
  await server.stop();
  await tracing?.shutdown().catch(() => undefined);
  stopRequested.dispose();
  io.out('smart-whale: stopped\n');
  return 0;
}

/**
 * A signal within this long of the first is the same Ctrl-C delivered twice: the terminal signals
 * the whole process group and `npm start` forwards the signal to its child as well.
 */
const DUPLICATE_SIGNAL_MS = 1000;

/** Resolves on the first SIGINT/SIGTERM or abort; a second signal (after DUPLICATE_SIGNAL_MS) forces the exit. */
function waitForStop(signal?: AbortSignal): { promise: Promise<string>; dispose: () => void } {
  let first: ((how: string) => void) | undefined;
  const promise = new Promise<string>((resolve) => (first = resolve));
  let received = false;
  let firstAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      if (performance.now() - firstAt < DUPLICATE_SIGNAL_MS) return;
      process.stderr.write(`smart-whale: ${sig} again: exiting now\n`);
      process.exit(130);
    }
    received = true;
    firstAt = performance.now();
    first?.(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onAbort = () => {
    received = true;
    first?.('stop requested');
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
