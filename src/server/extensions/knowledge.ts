/**
 * The knowledge extension `whale start` runs (the seed's FederationService at
 * work in a node):
 * - a KnowledgeManager in every node, fed by the FederationService: every
 *   knowledge item any node shares reaches every node over the bus and is
 *   stored before models see it; with REDIS_URL the items live in Redis (a
 *   node that joins later loads them), with knowledge.dir in a local log;
 * - every hosted model registered with the FederationService (hostModel), on
 *   its own topic created through the TopicManager;
 * - answered requests shared as knowledge (knowledge.share): an embedding of
 *   the input (answer-embedding.ts) with a summary of the answer, the privacy
 *   guard applied, sampled and rate-limited;
 * - search: POST /v1/knowledge/search, GET /v1/knowledge, and request/reply on
 *   whale.knowledge.search;
 * - the deep level joined by models on other nodes (knowledge-collaboration.ts).
 */
import { readEnv, type EnvSource } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { answerSummary, inputEmbedding } from '../../core/federation/knowledge-sharing/answer-embedding.js';
import { knowledgeSink } from '../../core/federation/knowledge-sharing/federation-sink.js';
import { KnowledgeManager } from '../../core/federation/knowledge-sharing/knowledge-manager.js';
import type { RequestObservation } from '../../core/processing/processing-pipeline.js';
import { digestRequest } from '../../core/processing/tensor-digest.js';
import { defaultKnowledgeConfig, type CollaborationConfig, type KnowledgeConfig } from '../../config/knowledge.js';
import type { WhaleConfig } from '../../config/whale-config.js';
import { privacyGuard } from '../../services/privacy/index.js';
import { REPLY_TO_HEADER, type Subscription } from '../../transport/bus.js';
import { createEnvelope } from '../../transport/envelope.js';
import { errorAnswer } from '../../transport/http-json.js';
import { KNOWLEDGE_SEARCH_TOPIC } from '../../transport/topics.js';
import type { ServerExtension, WhaleServer } from '../whale-server.js';
import { DeepCollaboration } from './knowledge-collaboration.js';
import { knowledgeRoutes } from './knowledge-routes.js';
import { parseSearch, searchKnowledge } from './knowledge-search.js';

/** Topic of the items answered requests share. */
export const ANSWERS_TOPIC = 'answers';
export const KNOWLEDGE_GROUP = 'whale-knowledge';

export interface KnowledgeExtensionOptions {
  knowledge?: KnowledgeConfig;
  collaboration?: CollaborationConfig;
  /** Redis for the items (default REDIS_URL). */
  redisUrl?: string;
  maxBodyBytes?: number;
  logger?: Logger;
  /** Random numbers in [0, 1) for the share sample (tests). */
  random?: () => number;
  /** How often expired items and those beyond knowledge.maxItems are dropped (default 60 s). */
  pruneEveryMs?: number;
}

export class KnowledgeExtension implements ServerExtension {
  readonly name = 'knowledge';
  private readonly cfg: KnowledgeConfig;
  private readonly logger: Logger;
  private km: KnowledgeManager | undefined;
  private server: WhaleServer | undefined;
  private hosted: string[] = [];
  private offObserver: (() => void) | undefined;
  private sub: Subscription | undefined;
  private pruner: NodeJS.Timeout | undefined;
  private readonly sharing = new Set<Promise<unknown>>();
  private tokens = 0;
  private refilledAt = 0;
  private running = false;
  private shared = 0;

  constructor(private readonly o: KnowledgeExtensionOptions = {}) {
    this.cfg = o.knowledge ?? defaultKnowledgeConfig();
    this.logger = o.logger ?? createLogger('knowledge');
  }

  /** The node's KnowledgeManager (after start). */
  get manager(): KnowledgeManager {
    if (!this.km) throw new WhaleError('ERR_INVALID_STATE', 'the knowledge extension has not started');
    return this.km;
  }

  async start(server: WhaleServer): Promise<void> {
    this.server = server;
    const { messaging } = server;
    const federation = messaging.federation;
    const cfg = this.cfg;
    this.km = await KnowledgeManager.open({
      dim: cfg.dim,
      metric: cfg.metric,
      dir: cfg.dir,
      ...(this.o.redisUrl ? { redis: { url: this.o.redisUrl, prefix: cfg.redisPrefix } } : {}),
      logger: this.logger,
    });
    federation.storeKnowledgeIn(knowledgeSink(this.km));
    const collab = this.collaboration(server);
    // Concurrently: on Kafka each model's topic is one consumer group to join.
    const names = server.host.names();
    await Promise.all([
      ...names.map((name) => federation.hostModel(name, collab?.handler(server, name) ?? {})),
      this.answerSearches(server),
    ]);
    this.hosted.push(...names);
    if (collab) server.pipeline.setCollaborator(collab);
    if (cfg.share.answers && cfg.share.sample > 0 && cfg.share.maxPerSecond > 0)
      this.offObserver = server.pipeline.addObserver((o) => this.onAnswered(o));
    server.http.addHandler((req, res, url) =>
      this.running
        ? knowledgeRoutes({
            manager: this.manager,
            dim: cfg.dim,
            node: messaging.nodeId,
            maxBodyBytes: this.o.maxBodyBytes ?? 1024 * 1024,
            stats: () => this.stats(),
          })(req, res, url)
        : false,
    );
    this.pruner = setInterval(() => void this.prune(), this.o.pruneEveryMs ?? 60_000).unref();
    this.running = true;
    this.logger.info('knowledge started', {
      models: this.hosted.join(','),
      store: this.o.redisUrl ? 'redis' : cfg.dir === false ? 'memory' : cfg.dir,
      deep: collab ? 'with other nodes' : 'local',
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.pruner);
    this.offObserver?.();
    this.offObserver = undefined;
    await this.sub?.close();
    this.sub = undefined;
    const server = this.server;
    if (server) {
      server.pipeline.setCollaborator(undefined);
      for (const m of this.hosted) await server.messaging.federation.unregisterModel(m);
      server.messaging.federation.storeKnowledgeIn(undefined);
    }
    this.hosted = [];
    await Promise.allSettled([...this.sharing]);
    await this.km?.close();
  }

  /** Drops expired items, then the oldest shared answers beyond knowledge.maxItems. */
  async prune(): Promise<number> {
    try {
      return (await this.km?.prune({ keep: this.cfg.maxItems, topic: ANSWERS_TOPIC })) ?? 0;
    } catch (err) {
      this.logger.warn('knowledge: prune failed', { error: (err as Error).message });
      return 0;
    }
  }

  /** Items kept here and shared from here. */
  stats(): { items: number; vectors: number; shared: number; models: string[] } {
    const s = this.km?.stats();
    return { items: s?.items ?? 0, vectors: s?.vectors ?? 0, shared: this.shared, models: [...this.hosted] };
  }

  /** Answers searches over the bus (one node of the group each). */
  private async answerSearches(server: WhaleServer): Promise<void> {
    const { messaging } = server;
    const dim = this.cfg.dim;
    await messaging.topics.ensureTopics([KNOWLEDGE_SEARCH_TOPIC]);
    this.sub = await messaging.bus.subscribe(
      KNOWLEDGE_SEARCH_TOPIC,
      async (e) => {
        if (!e.headers[REPLY_TO_HEADER]) return; // not sent with request(): nobody waits for an answer
        let payload: unknown;
        try {
          payload = await searchKnowledge(
            this.manager,
            parseSearch(e.payload, dim, { mayActAs: false }),
            messaging.nodeId,
          );
        } catch (err) {
          payload = errorAnswer(err);
        }
        await messaging.bus.reply(
          e,
          createEnvelope({ type: 'KnowledgeSearchResult', source: messaging.nodeId, payload }),
        );
      },
      { group: KNOWLEDGE_GROUP },
    );
  }

  private collaboration(server: WhaleServer): DeepCollaboration | undefined {
    const c = this.o.collaboration ?? { deep: 'auto', timeoutMs: 5000 };
    const on = c.deep === true || (c.deep === 'auto' && server.messaging.bus.kind === 'kafka');
    if (!on) return undefined;
    return new DeepCollaboration({
      federation: server.messaging.federation,
      nodeId: server.messaging.nodeId,
      timeoutMs: c.timeoutMs,
      ...(c.models ? { models: c.models } : {}),
      logger: this.logger,
    });
  }

  /** An answered request, shared when the sample and the rate allow. */
  private onAnswered(o: RequestObservation): void {
    if (!this.running || !o.ok || o.cached || !o.inputs || !o.outputs) return;
    const share = this.cfg.share;
    if (share.sample < 1 && (this.o.random ?? Math.random)() >= share.sample) return;
    if (!this.takeToken()) return;
    const embedding = inputEmbedding(o.inputs, this.cfg.dim);
    if (!embedding) return;
    const server = this.server!;
    const nodeId = server.messaging.nodeId;
    // Anonymous knowledge names neither the model nor the node (the FederationService drops the source model too).
    const who = share.privacy === 'anonymous' ? {} : { model: o.model, version: o.version, node: nodeId };
    const content = privacyGuard({ ...who, level: o.level, answer: answerSummary(o.outputs) }) as Record<
      string,
      unknown
    >;
    const data = {
      ...content,
      topic: ANSWERS_TOPIC,
      key: digestRequest(o.model, o.version, o.inputs),
      time: Date.now(),
      ttlMs: share.ttlMs,
      embedding: Array.from(embedding),
    };
    const job = server.messaging.federation
      .shareKnowledge(o.model, 'all', data, { privacy: share.privacy })
      .then(() => void this.shared++)
      .catch((err: Error) => this.logger.debug('knowledge not shared', { model: o.model, error: err.message }));
    this.sharing.add(job);
    void job.finally(() => this.sharing.delete(job));
  }

  private takeToken(): boolean {
    const rate = this.cfg.share.maxPerSecond;
    const now = performance.now();
    this.tokens = Math.min(Math.max(1, rate), this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The factory DEFAULT_EXTENSIONS lists (knowledge.enabled false: an extension that only registers the models). */
export function knowledgeExtension(config: WhaleConfig, env: EnvSource | undefined): ServerExtension {
  const knowledge = config.knowledge ?? defaultKnowledgeConfig();
  const redisUrl = readEnv(env).redisUrl;
  if (!knowledge.enabled) return new ModelRegistration();
  return new KnowledgeExtension({
    knowledge,
    ...(config.collaboration ? { collaboration: config.collaboration } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    maxBodyBytes: config.http.maxBodyBytes,
  });
}

/** Without knowledge the hosted models are still registered with the FederationService (on their topics). */
class ModelRegistration implements ServerExtension {
  readonly name = 'federation-models';
  private models: string[] = [];
  private server: WhaleServer | undefined;

  async start(server: WhaleServer): Promise<void> {
    this.server = server;
    this.models = server.host.names();
    await Promise.all(this.models.map((m) => server.messaging.federation.hostModel(m)));
  }

  async stop(): Promise<void> {
    for (const m of this.models) await this.server?.messaging.federation.unregisterModel(m);
  }
}
