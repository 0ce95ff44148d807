/**
 * The gRPC endpoint: KServe's GRPCInferenceService (proto/grpc_predict_v2.proto)
 * on @grpc/grpc-js — ServerLive, ServerReady, ModelReady, ServerMetadata,
 * ModelMetadata and ModelInfer, on the same pipeline, scheduler, keys, limits
 * and errors as the HTTP endpoint:
 * - keys: the `authorization: Bearer wk_…` (or `x-api-key`) metadata, decided by
 *   the HTTP guard's `authorize` as the matching HTTP route (reading calls as
 *   GET /v2/…, ModelInfer as POST /v2/models/{m}/infer); the key's tenant is the
 *   request's (tenantForPrincipal), so quotas and fair share are the same;
 * - limits: messages past maxMessageBytes are refused by grpc-js
 *   (RESOURCE_EXHAUSTED), the tensor bytes of a call in flight count against the
 *   HTTP server's byte budget (UNAVAILABLE past it), the call's deadline bounds
 *   the pipeline's timeout, a cancelled call aborts its queued work;
 * - errors: WhaleError code → status by GRPC_STATUS (./status.ts).
 * ModelInfer takes typed `contents` or `raw_input_contents` and answers in the
 * same form (raw in → raw_output_contents, typed in → typed contents).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  loadPackageDefinition,
  Server,
  setLogger,
  ServerCredentials,
  status,
  type GrpcObject,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

import { WhaleError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { NamedTensors, Tensor, TensorSpec } from '../../core/base/tensor.js';
import type { ModelHost } from '../../core/processing/model-host.js';
import { LEVELS, type Level, type ProcessingPipeline } from '../../core/processing/processing-pipeline.js';
import { packageRoot } from '../../native/loader.js';
import { ByteBudget, MAX_CLIENT_STRING_LENGTH } from '../../transport/http-json.js';
import { authorize, tenantForPrincipal, type AuthOptions, type AuthRequest } from '../auth/guard.js';
import { optionalParam } from '../http-server.js';
import { instrumentGrpcCall } from '../request-context.js';
import { decodeRawTensor, encodeRawTensor } from '../v2-binary.js';
import { parseInferRequest, toTensor, type V2InferRequest } from '../v2-tensors.js';
import { grpcError } from './status.js';

/** The service definition's file, shipped in the package (package.json "files"). */
export const PROTO_FILE = join(packageRoot(), 'proto', 'grpc_predict_v2.proto');

/** How messages map to JS: field names as in the proto, int64 as decimal strings (no precision lost), bytes as Buffers. */
export const PROTO_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** The package object of the proto (clients use it too: `new pkg.inference.GRPCInferenceService(address, credentials)`). */
export function loadInferenceProto(): GrpcObject {
  return loadPackageDefinition(loadSync(PROTO_FILE, PROTO_OPTIONS));
}

export interface GrpcTls {
  /** PEM certificate chain and private key (read from the configured paths by WhaleServer). */
  cert: Buffer;
  key: Buffer;
}

export interface GrpcServerOptions {
  host: ModelHost;
  pipeline: ProcessingPipeline;
  logger: Logger;
  serverName: string;
  serverVersion: string;
  auth: AuthOptions;
  /** Largest message received (grpc-js answers RESOURCE_EXHAUSTED past it). */
  maxMessageBytes: number;
  /** The server-wide budget of request bytes in flight, shared with the HTTP endpoint. */
  budget?: ByteBudget;
  /** Concurrent calls on one connection (HTTP/2 streams). */
  maxConcurrentStreams?: number;
  tls?: GrpcTls;
  /** False while starting or draining. */
  isReady: () => boolean;
}

type Param = {
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
  parameter_choice?: string;
};
type Contents = {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: string[];
  uint_contents: number[];
  uint64_contents: string[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
};
interface InferRequestMessage {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, Param>;
  inputs: {
    name: string;
    datatype: string;
    shape: string[];
    parameters: Record<string, Param>;
    contents?: Contents | null;
  }[];
  outputs: { name: string; parameters: Record<string, Param> }[];
  raw_input_contents: Buffer[];
}

/** Which typed-contents field carries each datatype. */
const CONTENTS_FIELD: Record<string, keyof Contents> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

/** An InferParameter as a plain value (int64 as a number when it is a safe integer). */
function paramValue(p: Param, field: string): unknown {
  switch (p.parameter_choice) {
    case 'bool_param':
      return p.bool_param;
    case 'string_param':
      return p.string_param;
    case 'double_param':
      return p.double_param;
    case 'int64_param':
    case 'uint64_param': {
      const n = Number(p[p.parameter_choice]);
      if (!Number.isSafeInteger(n)) throw bad(field, `${p[p.parameter_choice]} is past the safe integer range`);
      return n;
    }
    default:
      return undefined;
  }
}

function params(map: Record<string, Param> | undefined, at: string): Record<string, unknown> | undefined {
  const keys = Object.keys(map ?? {});
  if (keys.length === 0) return undefined;
  return Object.fromEntries(keys.map((k) => [k, paramValue(map![k]!, `${at}.${k}`)]));
}

/** A plain value as an InferParameter. */
function toParam(v: unknown): Param {
  if (typeof v === 'boolean') return { bool_param: v };
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { int64_param: String(v) } : { double_param: v };
  return { string_param: String(v) };
}

function shapeOf(dims: string[], at: string): number[] {
  return dims.map((d, i) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n)) throw bad(`${at}.shape[${i}]`, `${d} is not a valid dimension`);
    return n;
  });
}

/** Typed contents of one input → the engine tensor (INT64/UINT64 kept exact through BigInt; the rest through the JSON tensor checks). */
function typedInput(
  name: string,
  datatype: string,
  shape: number[],
  contents: Contents | null | undefined,
  at: string,
): Tensor {
  const field = CONTENTS_FIELD[datatype];
  if (!field) throw bad(`${at}.datatype`, `${datatype} has no typed contents field: send it in raw_input_contents`);
  const values = (contents?.[field] ?? []) as unknown[];
  const count = shape.reduce((a, d) => a * d, 1);
  if (values.length !== count)
    throw bad(
      `${at}.contents.${field}`,
      `has ${values.length} elements but shape [${shape.join(', ')}] needs ${count}`,
    );
  if (datatype === 'INT64' || datatype === 'UINT64') {
    const data = datatype === 'INT64' ? new BigInt64Array(count) : new BigUint64Array(count);
    for (let i = 0; i < count; i++) data[i] = BigInt(values[i] as string);
    return { name, datatype, shape, data };
  }
  const data = datatype === 'BYTES' ? (values as Buffer[]).map((b) => b.toString('utf8')) : values;
  return toTensor({ name, datatype, shape, data }, at);
}

/** An engine tensor → typed contents. */
function typedOutput(t: Tensor): Partial<Contents> {
  const field = CONTENTS_FIELD[t.datatype];
  if (!field) return {};
  const d = t.data;
  if (t.datatype === 'BYTES') return { bytes_contents: (d as string[]).map((s) => Buffer.from(String(s), 'utf8')) };
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return { [field]: Array.from(d, String) };
  return { [field]: Array.from(d as ArrayLike<number | boolean>) };
}

/** The call's metadata as the headers the key guard reads. */
function authRequest(method: 'GET' | 'POST', metadata: Metadata): AuthRequest {
  const first = (k: string) => {
    const v = metadata.get(k)[0];
    return v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : v;
  };
  const headers: Record<string, string> = {};
  const auth = first('authorization');
  if (auth !== undefined) headers.authorization = auth;
  const key = first('x-api-key');
  if (key !== undefined) headers['x-api-key'] = key;
  return { method, headers };
}

export class InferenceGrpcServer {
  private readonly server: Server;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private port: number | undefined;

  constructor(private readonly o: GrpcServerOptions) {
    // grpc-js writes its own errors to stderr ("E <time> | …"): send them to the server's logger instead (process-wide).
    setLogger({ error: (...args: unknown[]) => o.logger.warn('grpc-js', { message: args.map(String).join(' ') }) });
    this.server = new Server({
      'grpc.max_receive_message_length': o.maxMessageBytes,
      'grpc.max_concurrent_streams': o.maxConcurrentStreams ?? 1000,
    });
    const pkg = loadInferenceProto() as { inference: { GRPCInferenceService: ServiceClientConstructor } };
    const impl: UntypedServiceImplementation = {
      ServerLive: this.unary(
        'GET',
        () => '/v2/health/live',
        () => ({ live: true }),
      ),
      ServerReady: this.unary(
        'GET',
        () => '/v2/health/ready',
        () => ({ ready: this.o.isReady() && this.o.host.allReady() }),
      ),
      ServerMetadata: this.unary(
        'GET',
        () => '/v2',
        () => ({ name: this.o.serverName, version: this.o.serverVersion, extensions: [] }),
      ),
      ModelReady: this.unary(
        'GET',
        (r: { name: string }) => `/v2/models/${encodeURIComponent(r.name)}/ready`,
        (r: { name: string; version: string }) => {
          this.model(r.name, r.version);
          return { ready: this.o.isReady() && this.o.host.isReady(r.name) };
        },
      ),
      ModelMetadata: this.unary(
        'GET',
        (r: { name: string }) => `/v2/models/${encodeURIComponent(r.name)}`,
        (r: { name: string; version: string }) => {
          const m = this.model(r.name, r.version);
          const spec = (t: TensorSpec) => ({ name: t.name, datatype: t.datatype, shape: t.shape });
          return {
            name: r.name,
            versions: [m.version],
            platform: m.platform,
            inputs: m.inputs.map(spec),
            outputs: m.outputs.map(spec),
          };
        },
      ),
      ModelInfer: this.unary(
        'POST',
        (r: InferRequestMessage) => `/v2/models/${encodeURIComponent(r.model_name)}/infer`,
        (r: InferRequestMessage, call, principal) => this.infer(r, call, principal),
      ),
    };
    this.server.addService(pkg.inference.GRPCInferenceService.service, impl);
  }

  /** The port bound (after listen). */
  get boundPort(): number | undefined {
    return this.port;
  }

  /** A unary handler: keys first (as the HTTP route `path` would need), then `answer`; any error → the table's status. */
  private unary<Req, Res>(
    method: 'GET' | 'POST',
    path: (r: Req) => string,
    answer: (r: Req, call: ServerUnaryCall<Req, Res>, principal: ReturnType<typeof authorize>) => Res | Promise<Res>,
  ) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      this.inFlight++;
      // Request id, log context, server span and access-log line (request-context.ts).
      void instrumentGrpcCall(call, this.o.logger, async (outcome) => {
        try {
          const principal = authorize(this.o.auth, authRequest(method, call.metadata), path(call.request));
          outcome.principal = principal;
          callback(null, await answer(call.request, call, principal));
        } catch (err) {
          const e = grpcError(err);
          outcome.code = e.code;
          if (e.code === status.INTERNAL) this.o.logger.error('gRPC call failed', { error: e.details });
          callback(e);
        } finally {
          if (--this.inFlight === 0) this.idle?.();
        }
      });
    };
  }

  private model(name: string, version: string) {
    if (name.length > MAX_CLIENT_STRING_LENGTH) throw bad('name', `longer than ${MAX_CLIENT_STRING_LENGTH} characters`);
    const m = this.o.host.get(name, version === '' ? undefined : version); // proto3: '' is "not given"
    return m;
  }

  private async infer(
    r: InferRequestMessage,
    call: ServerUnaryCall<InferRequestMessage, unknown>,
    principal: ReturnType<typeof authorize>,
  ): Promise<unknown> {
    if (!this.o.isReady())
      throw new WhaleError('ERR_SHUTTING_DOWN', 'the server is not accepting requests (starting or shutting down)', {
        retriable: true,
      });
    this.model(r.model_name, r.model_version);
    const raw = r.raw_input_contents.length > 0;
    if (raw && r.raw_input_contents.length !== r.inputs.length) {
      throw bad(
        'raw_input_contents',
        `has ${r.raw_input_contents.length} entries for ${r.inputs.length} inputs (one per input, in order)`,
      );
    }
    // The V2 request as the HTTP endpoint sees it, so that the same checks (names, shapes, datatypes, id, parameters) apply.
    const requestParams = params(r.parameters, 'parameters');
    const request: V2InferRequest = parseInferRequest(
      {
        ...(r.id === '' ? {} : { id: r.id }),
        ...(requestParams ? { parameters: requestParams } : {}),
        inputs: r.inputs.map((t, i) => ({
          name: t.name,
          datatype: t.datatype,
          shape: shapeOf(t.shape, `inputs[${i}]`),
          ...(raw ? { parameters: { binary_data_size: r.raw_input_contents[i]!.byteLength } } : { data: [] }),
        })),
        ...(r.outputs.length > 0 ? { outputs: r.outputs.map((o) => ({ name: o.name })) } : {}),
      },
      { binary: raw },
    );
    if (
      raw &&
      r.inputs.some((t) => t.contents && Object.values(t.contents).some((v) => Array.isArray(v) && v.length > 0))
    ) {
      throw bad('inputs', 'give raw_input_contents or typed contents, not both');
    }
    const bytes = raw
      ? r.raw_input_contents.reduce((a, b) => a + b.byteLength, 0)
      : r.inputs.reduce((a, t) => a + 8 * shapeOf(t.shape, 'inputs').reduce((x, d) => x * d, 1), 0);
    const budget = this.o.budget;
    if (budget && !budget.take(bytes)) {
      throw new WhaleError(
        'ERR_OVERLOADED',
        `the server is holding ${budget.used} bytes of requests (budget ${budget.limit}); this one (${bytes} bytes) was not taken: retry later`,
        {
          retriable: true,
          retryAfterMs: 1000,
        },
      );
    }
    try {
      const inputs: NamedTensors = {};
      request.inputs.forEach((t, i) => {
        const at = `inputs[${i}]`;
        if (inputs[t.name]) throw bad(`${at}.name`, `input '${t.name}' is given twice`);
        inputs[t.name] = raw
          ? decodeRawTensor(t.name, t.datatype, t.shape, r.raw_input_contents[i]!, at)
          : typedInput(t.name, t.datatype, t.shape, r.inputs[i]!.contents, at);
      });
      const p = request.parameters ?? {};
      const level = p.level;
      if (level !== undefined && !LEVELS.includes(level as Level))
        throw bad('parameters.level', `must be one of ${LEVELS.join(', ')}`);
      const claimed = optionalParam(p, 'tenant', 'string').tenant as string | undefined;
      const tenant = tenantForPrincipal(principal, claimed);
      // grpc-js also emits 'cancelled' when a finished call's stream closes: listen only while the request runs.
      const abort = new AbortController();
      const onCancel = () => abort.abort();
      call.once('cancelled', onCancel);
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      const left = Number.isFinite(deadlineMs) ? Math.max(1, deadlineMs - Date.now()) : undefined;
      const asked = optionalParam(p, 'timeout_ms', 'number', 'timeoutMs').timeoutMs as number | undefined;
      const timeoutMs = left === undefined ? asked : asked === undefined ? left : Math.min(asked, left);
      const result = await this.o.pipeline
        .processRequest({
          model: r.model_name,
          ...(r.model_version === '' ? {} : { version: r.model_version }), // runs the version asked for
          inputs,
          signal: abort.signal,
          ...(request.id === undefined ? {} : { requestId: request.id }),
          ...(level === undefined ? {} : { level: level as Level }),
          ...(tenant === undefined ? {} : { tenant }),
          ...optionalParam(p, 'priority', 'number'),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
          ...optionalParam(p, 'complexity', 'number'),
        })
        .finally(() => call.off('cancelled', onCancel));
      const names = request.outputs?.map((o) => o.name) ?? Object.keys(result.outputs);
      const outputs = names.map((name, i) => {
        const t = result.outputs[name];
        if (!t)
          throw bad(
            `outputs[${i}].name`,
            `the model has no output '${name}' (outputs: ${Object.keys(result.outputs).join(', ')})`,
          );
        return t;
      });
      return {
        model_name: result.model,
        model_version: result.modelVersion,
        id: request.id ?? '',
        parameters: {
          level: toParam(result.level),
          cached: toParam(result.cached),
          models: toParam(result.models.join(',')),
          device: toParam(result.device),
        },
        outputs: outputs.map((t) => ({
          name: t.name,
          datatype: t.datatype,
          shape: t.shape.map(String),
          ...(raw ? {} : { contents: typedOutput(t) }),
        })),
        raw_output_contents: raw ? outputs.map(encodeRawTensor) : [],
      };
    } finally {
      budget?.give(bytes);
    }
  }

  /** Binds host:port (0: any free port); resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    const creds = this.o.tls
      ? ServerCredentials.createSsl(null, [{ private_key: this.o.tls.key, cert_chain: this.o.tls.cert }], false)
      : ServerCredentials.createInsecure();
    const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, bound) => {
        if (err) {
          reject(
            new WhaleError('ERR_CONFIG', `grpc: cannot listen on ${address}: ${err.message}`, {
              field: 'grpc.port',
              cause: err,
            }),
          );
          return;
        }
        this.port = bound;
        resolve(bound);
      });
    });
  }

  /** Stops taking calls, lets calls in flight finish for up to graceMs, then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    if (this.port === undefined) {
      this.server.forceShutdown();
      return;
    }
    const done = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    if (this.inFlight > 0)
      await Promise.race([
        new Promise<void>((r) => (this.idle = r)),
        new Promise((r) => setTimeout(r, graceMs).unref()),
      ]);
    const timer = setTimeout(() => this.server.forceShutdown(), this.inFlight > 0 ? 0 : Math.min(graceMs, 1000));
    timer.unref();
    await done;
    clearTimeout(timer);
  }
}

/** Reads the PEM files of a `tls: { cert, key }` section (ERR_CONFIG naming the field when one cannot be read). */
export function readTls(tls: { cert: string; key: string }, section: string): GrpcTls {
  const read = (which: 'cert' | 'key') => {
    try {
      return readFileSync(tls[which]);
    } catch (err) {
      throw new WhaleError(
        'ERR_CONFIG',
        `${section}.tls.${which}: cannot read ${tls[which]}: ${(err as Error).message}`,
        { field: `${section}.tls.${which}`, cause: err },
      );
    }
  };
  return { cert: read('cert'), key: read('key') };
}
