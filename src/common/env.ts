/**
 * Every environment variable Smart Whale reads, declared once: ENV_VARS lists
 * them (name, type, default, description; docs/configuration.md carries the
 * same table, test/env.docs.test.ts keeps the two equal), and readEnv() gives
 * typed, lazily read values. Only the server, CLI, config, services, apps and
 * native-loader layers call readEnv(); core receives what it needs as options.
 *
 * An empty value counts as unset everywhere. Reads are lazy (each getter reads
 * the source when called), so a test that sets process.env sees its values.
 */
import { WhaleError } from './errors.js';
import type { LogLevel } from './logger.js';

export type EnvType = 'string' | 'url' | 'path' | 'list' | 'port' | 'flag' | 'level' | 'integer';

export interface EnvVar {
  name: string;
  type: EnvType;
  /** The behaviour when unset, as the docs state it. */
  default: string;
  description: string;
  /** Who reads it: the TypeScript runtime, the native addon (C++ getenv) or the build (scripts/build-native.mjs, CMake). */
  readBy: 'node' | 'addon' | 'build' | 'ctest';
}

// prettier-ignore
export const ENV_VARS: readonly EnvVar[] = [
  { name: 'KAFKA_BROKERS', type: 'list', default: 'unset: in-process LocalBus', description: 'comma-separated Kafka brokers (each trimmed, empty entries dropped): the services use Kafka', readBy: 'node' },
  { name: 'KAFKA_CLIENT_ID', type: 'string', default: '`kafka.clientId` (smart-whale)', description: 'the client id Kafka sees (quotas and ACLs on managed clusters are often per client id)', readBy: 'node' },
  { name: 'KAFKA_TLS', type: 'flag', default: 'on with SASL or a CA file, else `kafka.tls`', description: '`1`: TLS to the brokers with the system CAs; `0`: plaintext even with SASL (a private network)', readBy: 'node' },
  { name: 'KAFKA_TLS_CA_FILE', type: 'path', default: 'the system CAs', description: "PEM file of the CA that signed the brokers' certificates (turns TLS on)", readBy: 'node' },
  { name: 'KAFKA_SASL_MECHANISM', type: 'string', default: '`kafka.sasl.mechanism` (none)', description: '`plain`, `scram-sha-256` or `scram-sha-512` (with the two below; turns TLS on unless `KAFKA_TLS=0`)', readBy: 'node' },
  { name: 'KAFKA_SASL_USERNAME', type: 'string', default: '`kafka.sasl.username`', description: 'the SASL user (Confluent Cloud: the API key)', readBy: 'node' },
  { name: 'KAFKA_SASL_PASSWORD', type: 'string', default: 'none', description: 'the SASL password (Confluent Cloud: the API secret); never logged', readBy: 'node' },
  { name: 'KAFKA_SASL_PASSWORD_FILE', type: 'path', default: '`kafka.sasl.passwordFile`', description: 'a file holding that password instead (mode 600); set one of the two', readBy: 'node' },
  { name: 'REDIS_URL', type: 'url', default: 'unset: no Redis', description: "enables the cache's L2, persistent service state, shared quotas and the Redis health check (e.g. `redis://127.0.0.1:6379`)", readBy: 'node' },
  { name: 'WHALE_NODE_ID', type: 'string', default: 'the host name', description: "this node's name (also the id of its federation identity)", readBy: 'node' },
  { name: 'WHALE_CONFIG', type: 'path', default: '`./whale.config.json` when present', description: 'the configuration file', readBy: 'node' },
  { name: 'WHALE_HTTP_PORT', type: 'port', default: '`http.port` (8080)', description: 'where `whale start` listens (0-65535; also the port `whale top` asks)', readBy: 'node' },
  { name: 'WHALE_HTTP_HOST', type: 'string', default: '`http.host` (127.0.0.1)', description: 'the address `whale start` binds (`0.0.0.0` to serve other machines)', readBy: 'node' },
  { name: 'WHALE_API_KEYS_FILE', type: 'path', default: '`auth.keysFile`', description: 'a JSON file of hashed API keys (`whale keys create` writes it); used instead of `auth.keysFile`', readBy: 'node' },
  { name: 'WHALE_FEDERATION_SECRET', type: 'string', default: 'none', description: 'key for encrypted knowledge sharing, >= 256 bits (e.g. `openssl rand -base64 32`)', readBy: 'node' },
  { name: 'WHALE_FEDERATION_KEY_FILE', type: 'path', default: 'none', description: 'file holding that key instead (mode 600); set one of the two', readBy: 'node' },
  { name: 'WHALE_IDENTITY_KEY_FILE', type: 'path', default: 'none', description: "PEM file of this node's Ed25519 identity key (mode 600)", readBy: 'node' },
  { name: 'WHALE_IDENTITY_KEY', type: 'string', default: 'none', description: 'that key inline (PEM or base64 of it); set one of the two', readBy: 'node' },
  { name: 'WHALE_CACHE_DIR', type: 'path', default: '`$XDG_CACHE_HOME/smart-whale` or `~/.cache/smart-whale`', description: "the cache directory (disk tier, knowledge, metric history), private 0700", readBy: 'node' },
  { name: 'XDG_CACHE_HOME', type: 'path', default: '`~/.cache`', description: 'base of the default cache directory (absolute paths only)', readBy: 'node' },
  { name: 'WHALE_METRICS_DB', type: 'string', default: '`<cache dir>/metrics.db`', description: 'metric/alert history: a SQLite file, `postgres://…`, or `off`', readBy: 'node' },
  { name: 'WHALE_ALERT_WEBHOOK', type: 'url', default: 'none', description: 'where alerts are POSTed', readBy: 'node' },
  { name: 'WHALE_ALERT_RULES', type: 'path', default: 'none', description: 'a JSON file of extra alert rules', readBy: 'node' },
  { name: 'WHALE_REQUIRE_GPU', type: 'flag', default: 'off', description: '`1`: readiness fails while no GPU is visible', readBy: 'node' },
  { name: 'WHALE_ROUTING', type: 'path', default: '`whale.routing.json` beside the configuration', description: 'the routing file (tasks and the router)', readBy: 'node' },
  { name: 'WHALE_LOG_LEVEL', type: 'level', default: '`info`', description: '`debug`, `info`, `warn`, `error`, `silent`', readBy: 'node' },
  { name: 'WHALE_TRACING', type: 'flag', default: '`tracing.enabled` (off)', description: '`1`: OpenTelemetry traces exported over OTLP/HTTP; `0`: none, whatever the configuration says (see [Monitoring](monitoring.md#tracing))', readBy: 'node' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', type: 'url', default: '`tracing.otlpEndpoint` (`http://localhost:4318`)', description: 'base URL of the OTLP/HTTP collector; traces go to `<url>/v1/traces`', readBy: 'node' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', type: 'url', default: 'from the one above', description: 'the full URL traces are POSTed to (used as it is)', readBy: 'node' },
  { name: 'OTEL_EXPORTER_OTLP_HEADERS', type: 'list', default: 'none', description: 'headers sent to the collector, `key=value` pairs separated by commas (e.g. an API key; never logged)', readBy: 'node' },
  { name: 'OTEL_SERVICE_NAME', type: 'string', default: '`tracing.serviceName` (`smart-whale`)', description: "the traces' `service.name`", readBy: 'node' },
  { name: 'OTEL_TRACES_SAMPLER_ARG', type: 'string', default: '`tracing.sampleRatio` (1)', description: 'share of new traces recorded, 0-1 (a request that arrives with a sampled `traceparent` is always recorded)', readBy: 'node' },
  { name: 'WHALE_KAFKA_IDEMPOTENT', type: 'flag', default: '`kafka.idempotent` (on)', description: '`0`: Kafka producers are not idempotent (`whale start`, learners, `whale federate`), e.g. against librdkafka\'s mock cluster, which cannot serve idempotent producers', readBy: 'node' },
  { name: 'WHALE_NATIVE_PATH', type: 'path', default: 'the build outputs, then the prebuilt', description: 'load the addon from this path first', readBy: 'node' },
  { name: 'WHALE_THREADS', type: 'integer', default: 'all cores', description: 'native thread pool size', readBy: 'addon' },
  { name: 'WHALE_MALLOC_TUNING', type: 'flag', default: 'on', description: "`off`: keep glibc's default malloc thresholds; by default the addon, when loaded, lets blocks up to 32 MiB come from the heap and keeps up to 64 MiB of freed memory for reuse (each codec blob otherwise paid fresh page faults: int8 encode 2x slower)", readBy: 'addon' },
  { name: 'WHALE_RESULT_POOL', type: 'flag', default: 'on (off on Node 21+)', description: '`off`: results of 2 MiB and more as plain V8 arrays, not from the recycled native pool (see [Safety](safety.md))', readBy: 'addon' },
  { name: 'WHALE_NO_AVX512', type: 'flag', default: 'off', description: '`1`: use the AVX2 kernels even where the CPU has AVX-512 (the widest one the CPU runs is chosen at run time)', readBy: 'addon' },
  { name: 'WHALE_NO_AVX2', type: 'flag', default: 'off', description: '`1`: use the portable kernels even where the CPU has AVX2', readBy: 'addon' },
  { name: 'WHALE_ROBUST_STAGING', type: 'flag', default: 'on for Intel CPUs', description: '`off` / `on`: median and trimmed mean over more than 32 clients read each block of rows into L2 a row at a time before sorting (on), or prefetch as they read (off); staging won on an Intel Sapphire Rapids VM and lost on AMD Zen 4 (bench/RESULTS.md)', readBy: 'addon' },
  { name: 'WHALE_BUILD_TYPE', type: 'string', default: 'Release', description: '`Debug`: a debug build of the addon', readBy: 'build' },
  { name: 'WHALE_CUDA', type: 'flag', default: 'on when nvcc exists', description: '`off` (or `0`, `false`, `no`): build without the CUDA kernels', readBy: 'build' },
  { name: 'WHALE_CUDA_ARCHITECTURES', type: 'string', default: '`80;90`', description: 'CUDA architectures to build for, e.g. `90`', readBy: 'build' },
  { name: 'WHALE_SANITIZE', type: 'flag', default: 'off', description: '`1`: ASan + UBSan build of the addon and the native tests', readBy: 'build' },
  { name: 'WHALE_CUEMU_VERBOSE', type: 'flag', default: 'off', description: 'set: the CUDA emulation (native/cuemu) prints why it rejected a launch or a kernel failed', readBy: 'ctest' },
  { name: 'CMAKE_BUILD_PARALLEL_LEVEL', type: 'integer', default: 'all cores', description: 'parallel compile jobs of `npm run build:native`', readBy: 'build' },
];

export type EnvSource = Readonly<Record<string, string | undefined>>;

/** The typed values of the variables the TypeScript runtime reads. */
export interface WhaleEnv {
  readonly kafkaBrokers: string[];
  readonly kafkaClientId: string | undefined;
  /** KAFKA_TLS: true for `1`/`true`/`on`, false for `0`/`false`/`off`, undefined when unset; ERR_CONFIG otherwise. */
  readonly kafkaTls: boolean | undefined;
  readonly kafkaTlsCaFile: string | undefined;
  readonly kafkaSaslMechanism: string | undefined;
  readonly kafkaSaslUsername: string | undefined;
  readonly kafkaSaslPassword: string | undefined;
  readonly kafkaSaslPasswordFile: string | undefined;
  readonly redisUrl: string | undefined;
  readonly nodeId: string | undefined;
  readonly configFile: string | undefined;
  /** ERR_CONFIG (field WHALE_HTTP_PORT) when set to anything but a port number. */
  readonly httpPort: number | undefined;
  readonly httpHost: string | undefined;
  readonly apiKeysFile: string | undefined;
  readonly federationSecret: string | undefined;
  readonly federationKeyFile: string | undefined;
  readonly identityKeyFile: string | undefined;
  readonly identityKey: string | undefined;
  readonly cacheDir: string | undefined;
  readonly xdgCacheHome: string | undefined;
  readonly metricsDb: string | undefined;
  readonly alertWebhook: string | undefined;
  readonly alertRules: string | undefined;
  readonly requireGpu: boolean;
  readonly routingFile: string | undefined;
  readonly logLevel: LogLevel | undefined;
  /** WHALE_TRACING: true for `1`/`true`/`on`, false for `0`/`false`/`off`, undefined when unset; ERR_CONFIG otherwise. */
  readonly tracing: boolean | undefined;
  readonly otlpEndpoint: string | undefined;
  readonly otlpTracesEndpoint: string | undefined;
  readonly otlpHeaders: string | undefined;
  readonly otelServiceName: string | undefined;
  readonly otelTracesSamplerArg: string | undefined;
  readonly kafkaIdempotent: boolean;
  readonly nativePath: string | undefined;
}

/** KAFKA_BROKERS's one parse: split on commas, each trimmed, empty entries dropped. */
export function parseList(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parsePort(v: string, name: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65_535)
    throw new WhaleError('ERR_CONFIG', `${name}: must be a port number 0-65535, got '${v}'`, { field: name });
  return n;
}

/**
 * Typed, lazy view of `source` (default: process.env as it is at each read).
 * Tests and embedders pass a plain record instead.
 */
export function readEnv(source?: EnvSource): WhaleEnv {
  const raw = (name: string): string | undefined => {
    const v = (source ?? process.env)[name];
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    get kafkaBrokers() {
      return parseList(raw('KAFKA_BROKERS'));
    },
    get kafkaClientId() {
      return raw('KAFKA_CLIENT_ID');
    },
    get kafkaTls() {
      const v = raw('KAFKA_TLS');
      if (v === undefined) return undefined;
      if (/^(1|true|on|yes)$/i.test(v)) return true;
      if (/^(0|false|off|no)$/i.test(v)) return false;
      throw new WhaleError('ERR_CONFIG', `KAFKA_TLS: must be 1 or 0, got '${v}'`, { field: 'KAFKA_TLS' });
    },
    get kafkaTlsCaFile() {
      return raw('KAFKA_TLS_CA_FILE');
    },
    get kafkaSaslMechanism() {
      return raw('KAFKA_SASL_MECHANISM');
    },
    get kafkaSaslUsername() {
      return raw('KAFKA_SASL_USERNAME');
    },
    get kafkaSaslPassword() {
      return raw('KAFKA_SASL_PASSWORD');
    },
    get kafkaSaslPasswordFile() {
      return raw('KAFKA_SASL_PASSWORD_FILE');
    },
    get redisUrl() {
      return raw('REDIS_URL');
    },
    get nodeId() {
      return raw('WHALE_NODE_ID');
    },
    get configFile() {
      return raw('WHALE_CONFIG');
    },
    get httpPort() {
      const v = raw('WHALE_HTTP_PORT');
      return v === undefined ? undefined : parsePort(v, 'WHALE_HTTP_PORT');
    },
    get httpHost() {
      return raw('WHALE_HTTP_HOST');
    },
    get apiKeysFile() {
      return raw('WHALE_API_KEYS_FILE');
    },
    get federationSecret() {
      return raw('WHALE_FEDERATION_SECRET');
    },
    get federationKeyFile() {
      return raw('WHALE_FEDERATION_KEY_FILE');
    },
    get identityKeyFile() {
      return raw('WHALE_IDENTITY_KEY_FILE');
    },
    get identityKey() {
      return raw('WHALE_IDENTITY_KEY');
    },
    get cacheDir() {
      return raw('WHALE_CACHE_DIR');
    },
    get xdgCacheHome() {
      return raw('XDG_CACHE_HOME');
    },
    get metricsDb() {
      return raw('WHALE_METRICS_DB');
    },
    get alertWebhook() {
      return raw('WHALE_ALERT_WEBHOOK');
    },
    get alertRules() {
      return raw('WHALE_ALERT_RULES');
    },
    get requireGpu() {
      return raw('WHALE_REQUIRE_GPU') === '1';
    },
    get routingFile() {
      return raw('WHALE_ROUTING');
    },
    get tracing() {
      const v = raw('WHALE_TRACING');
      if (v === undefined) return undefined;
      if (/^(1|true|on|yes)$/i.test(v)) return true;
      if (/^(0|false|off|no)$/i.test(v)) return false;
      throw new WhaleError('ERR_CONFIG', `WHALE_TRACING: must be 1 or 0, got '${v}'`, { field: 'WHALE_TRACING' });
    },
    get otlpEndpoint() {
      return raw('OTEL_EXPORTER_OTLP_ENDPOINT');
    },
    get otlpTracesEndpoint() {
      return raw('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    },
    get otlpHeaders() {
      return raw('OTEL_EXPORTER_OTLP_HEADERS');
    },
    get otelServiceName() {
      return raw('OTEL_SERVICE_NAME');
    },
    get otelTracesSamplerArg() {
      return raw('OTEL_TRACES_SAMPLER_ARG');
    },
    get logLevel() {
      return raw('WHALE_LOG_LEVEL') as LogLevel | undefined;
    },
    get kafkaIdempotent() {
      return raw('WHALE_KAFKA_IDEMPOTENT') !== '0';
    },
    get nativePath() {
      return raw('WHALE_NATIVE_PATH');
    },
  };
}

/** This process's environment, typed (read at each access). */
export const env: WhaleEnv = readEnv();

/** The environment for a child process: this process's, with `overrides` on top. */
export function childEnv(overrides: EnvSource = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}
