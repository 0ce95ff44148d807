/**
 * DataSourceResponder: the data-collection ("balance") module's side of the DataRequest service, run on
 * the learner's own node. It answers DataRequested messages from its configured sources, puts the bytes
 * in the node's claim-check store and sends only the reference (DataResponded.data.ref), stops work at the
 * request's deadline or on DataCancelled. The data never travels on a bus shared with a coordinator.
 */
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { Bus, Subscription } from '../../transport/bus.js';
import { createEnvelope } from '../../transport/envelope.js';
import { TOPICS } from '../../transport/topics.js';
import { ClaimCheck } from '../../core/federation/orchestration/claim-check.js';
import type { KeyValueStore } from '../../core/federation/orchestration/kv-store.js';
import { subscribeTyped } from '../typed-subscribe.js';
import type { DataAnswer, DataSource } from './types.js';

export interface DataSourceResponderOptions {
  bus: Bus;
  /** The node's blob store (the requester reads the answer from it). */
  store: KeyValueStore;
  sources: readonly DataSource[];
  nodeId: string;
  /** Answers up to this many bytes travel inline (default 0: every answer is claim-checked). */
  inlineBytes?: number;
  logger?: Logger;
}

interface Requested {
  requestId: string;
  modelId: string;
  query: unknown;
  sourceType: string;
  parameters?: Record<string, unknown>;
  deadline: number;
}

export class DataSourceResponder {
  private readonly sources = new Map<string, DataSource>();
  private readonly claims: ClaimCheck;
  private readonly running = new Map<string, AbortController>();
  private readonly work = new Set<Promise<void>>();
  private subs: Subscription[] = [];
  private readonly logger: Logger;
  /** Answers sent, by outcome (tests and monitoring). */
  readonly counts = { completed: 0, failed: 0, cancelled: 0, timeout: 0 };

  constructor(private readonly o: DataSourceResponderOptions) {
    for (const s of o.sources) {
      if (this.sources.has(s.type))
        throw new WhaleError('ERR_INVALID_OPTION', `options.sources: two sources of type '${s.type}'`, {
          field: 'options.sources',
        });
      this.sources.set(s.type, s);
    }
    this.claims = new ClaimCheck(o.store, o.inlineBytes ?? 0);
    this.logger = o.logger ?? createLogger('data-source-responder');
  }

  /** Source types this node answers. */
  types(): string[] {
    return [...this.sources.keys()];
  }

  async start(): Promise<void> {
    if (this.subs.length > 0) return;
    this.subs.push(
      await subscribeTyped<Requested>(
        this.o.bus,
        'dataRequests',
        'DataRequested',
        `data-source-${this.o.nodeId}`,
        (p) => {
          // Not awaited: a long query must not hold up the cancellations and requests behind it.
          const job = this.answer(p)
            .catch((err: Error) =>
              this.logger.warn('data answer not sent', { requestId: p.requestId, error: err?.message }),
            )
            .finally(() => this.work.delete(job));
          this.work.add(job);
        },
      ),
      await subscribeTyped<{ requestId: string }>(
        this.o.bus,
        'dataControl',
        'DataCancelled',
        `data-source-control-${this.o.nodeId}`,
        (p) => this.running.get(p.requestId)?.abort(new WhaleError('ERR_CANCELLED', 'cancelled by the requester')),
      ),
    );
  }

  async stop(): Promise<void> {
    for (const s of this.subs) await s.close();
    this.subs = [];
    for (const c of this.running.values()) c.abort(new WhaleError('ERR_SHUTTING_DOWN', 'the data source is stopping'));
    await Promise.allSettled([...this.work]);
    for (const s of this.sources.values()) await s.close?.().catch(() => undefined);
  }

  private async answer(p: Requested): Promise<void> {
    const source = this.sources.get(p.sourceType);
    if (!source) {
      this.counts.failed++;
      return this.reply(p, {
        status: 'failed',
        error: `sourceType: no '${p.sourceType}' source on node ${this.o.nodeId} (${this.types().join(', ') || 'none'})`,
      });
    }
    const left = p.deadline - Date.now();
    if (left <= 0) {
      this.counts.timeout++;
      return; // the requester already counts it as timed out
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new WhaleError('ERR_TIMEOUT', 'the request deadline passed')), left);
    this.running.set(p.requestId, abort);
    const started = performance.now();
    try {
      const reply = await source.fetch(p.query, { signal: abort.signal, parameters: p.parameters ?? {} });
      if (abort.signal.aborted) throw abort.signal.reason;
      const ref = await this.claims.putBytes(reply.bytes);
      const data: DataAnswer = {
        ref,
        contentType: reply.contentType,
        bytes: reply.bytes.length,
        ...(reply.rows === undefined ? {} : { rows: reply.rows }),
        source: source.type,
        ms: performance.now() - started,
      };
      this.counts.completed++;
      await this.reply(p, { status: 'completed', data });
    } catch (err) {
      const reason = abort.signal.aborted ? (abort.signal.reason as WhaleError) : (err as Error);
      if (abort.signal.aborted) {
        // Cancelled: the requester knows. Timed out: it counts it as timed out at its deadline.
        if ((reason as WhaleError).code === 'ERR_TIMEOUT') this.counts.timeout++;
        else this.counts.cancelled++;
        return;
      }
      this.counts.failed++;
      this.logger.debug('data request failed', { requestId: p.requestId, error: reason.message });
      await this.reply(p, { status: 'failed', error: reason.message });
    } finally {
      clearTimeout(timer);
      this.running.delete(p.requestId);
    }
  }

  private async reply(p: Requested, r: { status: 'completed' | 'failed'; data?: DataAnswer; error?: string }) {
    await this.o.bus.publish(
      TOPICS.dataResponses,
      createEnvelope({ type: 'DataResponded', source: this.o.nodeId, payload: { requestId: p.requestId, ...r } }),
      { key: p.requestId },
    );
  }
}
