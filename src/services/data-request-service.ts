/**
 * DataRequestService: requests to the data-collection ("balance") module,
 * with status, cancellation, timeouts, and a processing-time estimate per
 * source type learned from observed response times.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../common/errors.js';
import type { Bus, Subscription } from '../transport/bus.js';
import { createEnvelope } from '../transport/envelope.js';
import { TOPICS } from '../transport/topics.js';
import type { StateStore } from './state-store.js';
import { Lifecycle, publishOrUndo } from './lifecycle.js';
import { subscribeTyped } from './typed-subscribe.js';
import { isPlainObject, optionsObject, requireId, requireJson, requireTimeout } from '../common/validate.js';

export type DataRequestState = 'pending' | 'completed' | 'failed' | 'cancelled' | 'timeout';

export interface DataRequestStatus {
  requestId: string;
  modelId: string;
  sourceType: string;
  priority: number;
  status: DataRequestState;
  createdAt: number;
  deadline: number;
  completedAt?: number;
  data?: unknown;
  error?: string;
  batchId?: string;
}

export interface DataRequestOptions {
  sourceType?: string;
  parameters?: Record<string, unknown>;
  /** 1 (lowest) .. 10 (highest), default 5. */
  priority?: number;
  timeoutMs?: number;
}

export interface DataResponse {
  requestId: string;
  status: 'completed' | 'failed';
  data?: unknown;
  error?: string;
}

const key = (id: string) => `data:${id}`;
const ALPHA = 0.2;
const ESTIMATES = 'data-estimates';

/**
 * Per source type, exponentially weighted (alpha 0.2) moments of the replies' time and size: the mean
 * time, and a line time = a + b·bytes fitted to them (the seed's _estimate_processing_time from source
 * type and size, learned instead of fixed).
 */
interface Estimate {
  meanMs: number;
  count: number;
  /** Replies that said their size, and the moments over them. */
  sized?: number;
  meanBytes?: number;
  meanBytes2?: number;
  meanBytesMs?: number;
  meanSizedMs?: number;
}

export interface ProcessingEstimate {
  meanMs: number;
  samples: number;
  basis: 'source' | 'all';
  /** With a size: the time expected for that many bytes (from the fitted line, or scaled from the mean). */
  forSizeMs?: number;
}

/** A completed request's answer, read back from the responder's claim-check store. */
export interface DataPayload {
  bytes: Uint8Array;
  contentType: string;
  rows?: number;
  /** The data source that answered. */
  source: string;
}

/** Where the requester reads claim-checked answers (the node's ClaimCheck). */
export interface DataBlobReader {
  getBytes(ref: { sha256: string; bytes: number; inline?: string }, field?: string): Promise<Uint8Array>;
}

export class DataRequestService {
  private readonly handlers = new Set<(r: DataResponse, s: DataRequestStatus) => unknown>();
  /** awaitData() callers per request, told when it settles (answered or cancelled). */
  private readonly waiters = new Map<string, Set<(s: DataRequestStatus) => void>>();
  private estimates: Record<string, Estimate> = {};
  private sub: Subscription | undefined;
  private readonly defaultTimeoutMs: number;
  private readonly lifecycle = new Lifecycle('data request service');

  constructor(
    private bus: Bus,
    private store: StateStore,
    private readonly o: { nodeId: string; defaultTimeoutMs?: number; retentionMs?: number },
  ) {
    this.defaultTimeoutMs = requireTimeout(o.defaultTimeoutMs ?? 30_000, 'options.defaultTimeoutMs');
  }

  /** @internal The facade hands over a fresh bus and store when it restarts. */
  rebind(bus: Bus, store: StateStore): void {
    this.bus = bus;
    this.store = store;
  }

  async initialize(): Promise<void> {
    if (this.sub) return;
    this.estimates = (await this.store.get<Record<string, Estimate>>(ESTIMATES)) ?? {};
    this.sub = await subscribeTyped<DataResponse>(
      this.bus,
      'dataResponses',
      'DataResponded',
      `data-${this.o.nodeId}`,
      (r) => this.onResponse(r),
    );
    this.lifecycle.started();
  }

  async shutdown(): Promise<void> {
    this.lifecycle.stopped();
    await this.sub?.close();
    this.sub = undefined;
  }

  /**
   * Publishes a request to the balance module. Arguments are checked before
   * anything is stored; if the publish fails, the pending record is removed
   * and the call fails (no request stays pending that nobody received).
   */
  async requestData(modelId: string, query: unknown, opts: DataRequestOptions = {}, batchId?: string): Promise<string> {
    const r = this.checkRequest(modelId, query, opts, 'query', 'options');
    this.lifecycle.assertOpen();
    const now = Date.now();
    const s: DataRequestStatus = {
      requestId: randomUUID(),
      modelId,
      sourceType: r.sourceType,
      priority: r.priority,
      status: 'pending',
      createdAt: now,
      deadline: now + r.timeoutMs,
      ...(batchId ? { batchId } : {}),
    };
    await this.save(s);
    const payload = {
      requestId: s.requestId,
      modelId,
      query,
      sourceType: s.sourceType,
      parameters: r.parameters,
      priority: r.priority,
      deadline: s.deadline,
      ...(batchId ? { batchId } : {}),
    };
    const envelope = createEnvelope({
      type: 'DataRequested',
      source: modelId,
      payload,
      headers: { priority: String(r.priority) },
    });
    await publishOrUndo(
      () => this.bus.publish(TOPICS.dataRequests, envelope, { key: s.requestId }),
      () => this.store.delete(key(s.requestId)),
    );
    return s.requestId;
  }

  /** Checks every query before sending the first, so a bad one does not leave half a batch behind. */
  async requestBatch(
    modelId: string,
    queries: ReadonlyArray<{ query: unknown; options?: DataRequestOptions }>,
  ): Promise<{ batchId: string; requestIds: string[] }> {
    if (!Array.isArray(queries) || queries.length === 0)
      throw new WhaleError('ERR_INVALID_ARG', 'queries: at least one query is required', { field: 'queries' });
    queries.forEach((q, i) => {
      if (!isPlainObject(q))
        throw new WhaleError('ERR_INVALID_ARG', `queries[${i}]: must be an object { query, options? }`, {
          field: `queries[${i}]`,
        });
      this.checkRequest(modelId, q.query, q.options ?? {}, `queries[${i}].query`, `queries[${i}].options`);
    });
    const batchId = randomUUID();
    const requestIds: string[] = [];
    for (const q of queries) requestIds.push(await this.requestData(modelId, q.query, q.options ?? {}, batchId));
    return { batchId, requestIds };
  }

  subscribeToDataResponses(handler: (r: DataResponse, s: DataRequestStatus) => unknown): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async getRequestStatus(requestId: string): Promise<DataRequestStatus> {
    requireId(requestId, 'requestId');
    const s = await this.store.get<DataRequestStatus>(key(requestId));
    if (!s) throw new WhaleError('ERR_NOT_FOUND', `requestId: no data request ${requestId}`, { field: 'requestId' });
    if (s.status === 'pending' && Date.now() >= s.deadline) {
      s.status = 'timeout';
      await this.save(s);
    }
    return s;
  }

  /** Cancels a pending request and tells the balance module; ERR_CONFLICT when it already finished. */
  async cancelRequest(requestId: string, reason = 'cancelled by the requester'): Promise<DataRequestStatus> {
    if (typeof reason !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'reason: must be a string', { field: 'reason' });
    this.lifecycle.assertOpen();
    const s = await this.getRequestStatus(requestId);
    if (s.status !== 'pending')
      throw new WhaleError('ERR_CONFLICT', `requestId: request ${requestId} is already ${s.status}`, {
        field: 'requestId',
      });
    const before = { ...s };
    s.status = 'cancelled';
    s.completedAt = Date.now();
    await this.save(s);
    // If the balance module cannot be told, the request is still pending there: keep it pending here too.
    await publishOrUndo(
      () =>
        this.bus.publish(
          TOPICS.dataControl,
          createEnvelope({ type: 'DataCancelled', source: s.modelId, payload: { requestId, reason } }),
          { key: requestId },
        ),
      () => this.save(before),
    );
    for (const w of [...(this.waiters.get(requestId) ?? [])]) w(s);
    return s;
  }

  /**
   * Learned processing time for a source type (and, given `sizeBytes`, for an answer of that size: the line
   * fitted to past replies' sizes and times); for an unseen type, the mean over all seen; undefined before any response.
   */
  estimateProcessingTime(sourceType: string, sizeBytes?: number): ProcessingEstimate | undefined {
    if (sizeBytes !== undefined && !(Number.isFinite(sizeBytes) && sizeBytes >= 0))
      throw new WhaleError('ERR_INVALID_ARG', `sizeBytes: must be a number >= 0, got ${String(sizeBytes)}`, {
        field: 'sizeBytes',
      });
    const e = this.estimates[sourceType];
    if (e) {
      const forSize = sizeBytes === undefined ? undefined : sizedEstimate(e, sizeBytes);
      return {
        meanMs: e.meanMs,
        samples: e.count,
        basis: 'source',
        ...(forSize === undefined ? {} : { forSizeMs: forSize }),
      };
    }
    const all = Object.values(this.estimates);
    if (all.length === 0) return undefined;
    const samples = all.reduce((n, x) => n + x.count, 0);
    return { meanMs: all.reduce((m, x) => m + x.meanMs * x.count, 0) / samples, samples, basis: 'all' };
  }

  /**
   * Waits for a request's answer and reads its bytes from the responder's claim-check store (checked against
   * the reference's hash). Rejects with ERR_TIMEOUT at the deadline, ERR_CANCELLED, or the source's error.
   */
  async awaitData(requestId: string, blobs: DataBlobReader): Promise<DataPayload> {
    const settled = await new Promise<DataRequestStatus>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiters = this.waiters.get(requestId) ?? new Set();
      this.waiters.set(requestId, waiters);
      const off = () => {
        waiters.delete(finish);
        if (waiters.size === 0) this.waiters.delete(requestId);
      };
      const finish = (st: DataRequestStatus) => {
        off();
        clearTimeout(timer);
        resolve(st);
      };
      waiters.add(finish);
      this.getRequestStatus(requestId).then(
        (st) => {
          if (st.status !== 'pending') return finish(st);
          timer = setTimeout(
            () => this.getRequestStatus(requestId).then(finish, reject),
            Math.max(0, st.deadline - Date.now()) + 1,
          );
        },
        (err: unknown) => {
          off();
          reject(err);
        },
      );
    });
    if (settled.status === 'completed') {
      const d = settled.data as { ref?: unknown; contentType?: unknown; rows?: unknown; source?: unknown } | undefined;
      if (!isPlainObject(d) || !isPlainObject(d.ref) || typeof d.contentType !== 'string')
        throw new WhaleError('ERR_INVALID_MESSAGE', `request ${requestId}: the answer carries no data reference`, {
          field: 'data.ref',
        });
      const bytes = await blobs.getBytes(d.ref as { sha256: string; bytes: number }, 'data.ref');
      return {
        bytes,
        contentType: d.contentType,
        ...(typeof d.rows === 'number' ? { rows: d.rows } : {}),
        source: typeof d.source === 'string' ? d.source : settled.sourceType,
      };
    }
    const code =
      settled.status === 'timeout'
        ? 'ERR_TIMEOUT'
        : settled.status === 'cancelled'
          ? 'ERR_CANCELLED'
          : 'ERR_EXECUTION_FAILED';
    throw new WhaleError(
      code,
      `data request ${requestId} ${settled.status}${settled.error ? `: ${settled.error}` : ''}`,
      {
        field: 'requestId',
        retriable: settled.status === 'timeout',
      },
    );
  }

  /** requestData and awaitData in one call: the answer's bytes. */
  async fetchData(
    modelId: string,
    query: unknown,
    opts: DataRequestOptions,
    blobs: DataBlobReader,
  ): Promise<DataPayload> {
    return this.awaitData(await this.requestData(modelId, query, opts), blobs);
  }

  private async onResponse(r: DataResponse): Promise<void> {
    const s = await this.store.get<DataRequestStatus>(key(r.requestId));
    if (!s || s.status !== 'pending') return; // not ours, cancelled or timed out: a late answer
    const now = Date.now();
    s.status = now >= s.deadline ? 'timeout' : r.status;
    s.completedAt = now;
    if (r.data !== undefined) s.data = r.data;
    if (r.error !== undefined) s.error = r.error;
    await this.save(s);
    const bytes = isPlainObject(r.data) && typeof r.data.bytes === 'number' ? r.data.bytes : undefined;
    this.observe(s.sourceType, now - s.createdAt, bytes);
    await this.store.set(ESTIMATES, this.estimates);
    for (const w of [...(this.waiters.get(s.requestId) ?? [])]) w(s);
    for (const h of this.handlers) await h(r, s);
  }

  private checkRequest(
    modelId: unknown,
    query: unknown,
    opts: DataRequestOptions,
    queryField: string,
    optsField: string,
  ) {
    requireId(modelId, 'modelId');
    requireJson(query, queryField, { required: true });
    const o = optionsObject(opts, optsField);
    const priority = o.priority ?? 5;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 1 || priority > 10) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `${optsField}.priority: must be an integer 1..10, got ${String(priority)}`,
        { field: `${optsField}.priority` },
      );
    }
    const timeoutMs = requireTimeout(o.timeoutMs ?? this.defaultTimeoutMs, `${optsField}.timeoutMs`);
    const sourceType = o.sourceType ?? 'default';
    if (typeof sourceType !== 'string' || sourceType.length === 0) {
      throw new WhaleError('ERR_INVALID_OPTION', `${optsField}.sourceType: must be a non-empty string`, {
        field: `${optsField}.sourceType`,
      });
    }
    const parameters = o.parameters ?? {};
    if (!isPlainObject(parameters))
      throw new WhaleError('ERR_INVALID_OPTION', `${optsField}.parameters: must be an object`, {
        field: `${optsField}.parameters`,
      });
    requireJson(parameters, `${optsField}.parameters`);
    return { priority, timeoutMs, sourceType, parameters };
  }

  private observe(sourceType: string, ms: number, bytes?: number): void {
    const e = this.estimates[sourceType];
    const ewma = (old: number | undefined, x: number) => (old === undefined ? x : old + ALPHA * (x - old));
    const next: Estimate = e ? { ...e, meanMs: ewma(e.meanMs, ms), count: e.count + 1 } : { meanMs: ms, count: 1 };
    if (bytes !== undefined && Number.isFinite(bytes) && bytes >= 0) {
      next.sized = (e?.sized ?? 0) + 1;
      next.meanBytes = ewma(e?.meanBytes, bytes);
      next.meanBytes2 = ewma(e?.meanBytes2, bytes * bytes);
      next.meanBytesMs = ewma(e?.meanBytesMs, bytes * ms);
      next.meanSizedMs = ewma(e?.meanSizedMs, ms);
    }
    this.estimates[sourceType] = next;
  }

  private save(s: DataRequestStatus): Promise<void> {
    return this.store.set(
      key(s.requestId),
      s,
      Math.max(1, s.deadline - Date.now()) + (this.o.retentionMs ?? 3_600_000),
    );
  }
}

/** Time for `bytes` from the fitted line (a + b·bytes, b >= 0), else the mean scaled by size; undefined without sized replies. */
function sizedEstimate(e: Estimate, bytes: number): number | undefined {
  if (!e.sized || e.meanBytes === undefined || e.meanSizedMs === undefined) return undefined;
  const variance = (e.meanBytes2 ?? 0) - e.meanBytes * e.meanBytes;
  if (variance > 1e-9 * Math.max(1, e.meanBytes * e.meanBytes)) {
    const slope = Math.max(0, ((e.meanBytesMs ?? 0) - e.meanBytes * e.meanSizedMs) / variance);
    const intercept = Math.max(0, e.meanSizedMs - slope * e.meanBytes);
    return intercept + slope * bytes;
  }
  return e.meanBytes > 0 ? (e.meanSizedMs * bytes) / e.meanBytes : e.meanSizedMs;
}
