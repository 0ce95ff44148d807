/**
 * FederationService: knowledge sharing between models (standard, anonymous,
 * encrypted) and collaboration requests with responses and expiry, over the
 * federation topics. Pending collaborations live in the StateStore.
 * Encrypted knowledge is authenticated (sender, target, id, time) and
 * replay-checked; a rejected message is counted, logged and dead-lettered.
 * A hosted model (hostModel) also listens on its own topic (modelTopic,
 * created through the TopicManager): requests sent with channel 'model'
 * reach only the nodes hosting their targets. Answers are recorded by the
 * node that asked; awaitCollaboration waits for them up to the deadline.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { KnowledgeSink } from '../core/federation/knowledge-sharing/federation-sink.js';
import type { ReplayWindowOptions } from '../core/federation/security/replay-guard.js';
import type { Bus, Subscription } from '../transport/bus.js';
import { createEnvelope, type Envelope } from '../transport/envelope.js';
import type { TopicManager } from '../transport/topic-manager.js';
import { modelTopic, TOPICS } from '../transport/topics.js';
import type { Sealed } from './knowledge-crypto.js';
import { Lifecycle, publishOrUndo } from './lifecycle.js';
import { privacyGuard } from './privacy/index.js';
import type { StateStore } from './state-store.js';
import { subscribeMessages, subscribeTyped } from './typed-subscribe.js';
import { CollaborationWaiters } from './collaboration-waiters.js';
import { EncryptedKnowledge, type KnowledgeRejection } from './encrypted-knowledge.js';
import { ModelHosts } from './model-hosts.js';
import { optionsObject, requireId, requireJson, requireTimeout } from '../common/validate.js';

import type {
  CollaborationRequest,
  CollaborationState,
  CollaborationStatus,
  Knowledge,
  ModelHandler,
  Privacy,
} from './federation-types.js';

export type { CollaborationRequest, CollaborationState, CollaborationStatus, Knowledge, ModelHandler, Privacy };

export interface FederationServiceOptions {
  nodeId: string;
  /** Federation key for 'encrypted' (see federation-key.ts for the entropy rule); default: the environment. */
  secret?: string | Uint8Array;
  /** File holding the federation key (like $WHALE_FEDERATION_KEY_FILE). */
  keyFile?: string;
  /** Where WHALE_FEDERATION_SECRET / WHALE_FEDERATION_KEY_FILE are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Age and clock-skew limits of encrypted knowledge (replay window). */
  replay?: ReplayWindowOptions;
  /** How long finished collaboration records are kept (default 1 h). */
  retentionMs?: number;
  /** Stores every knowledge item this node receives (knowledgeSink(manager)) before models see it; a failed store is retried by the bus. */
  knowledge?: KnowledgeSink;
  /** Creates hosted models' own topics on Kafka (default: none created, Kafka's auto-creation). */
  topics?: TopicManager;
  logger?: Logger;
}

export type { KnowledgeRejection };

type KnowledgeWire = {
  sourceModel?: string;
  targetModel: string;
  privacy: Privacy;
  data?: unknown;
  encrypted?: Sealed;
};
type ResponseWire = { requestId: string; responder: string; solution: unknown; node?: string };

const key = (id: string) => `collab:${id}`;

export class FederationService {
  private readonly models = new Map<string, ModelHandler>();
  private readonly listeners = new Set<(k: Knowledge) => unknown>();
  private readonly lifecycle = new Lifecycle('federation service');
  private readonly encrypted: EncryptedKnowledge;
  private readonly logger: Logger;
  private subs: Subscription[] = [];
  private readonly retentionMs: number;
  private sink: KnowledgeSink | undefined;
  /** Models listening on their own topic, and those subscriptions (while initialized). */
  private readonly hosted = new Set<string>();
  private readonly modelSubs = new Map<string, Subscription>();
  private readonly waiters = new CollaborationWaiters();
  private readonly hosts: ModelHosts;

  constructor(
    private bus: Bus,
    private store: StateStore,
    private readonly o: FederationServiceOptions,
  ) {
    this.retentionMs = o.retentionMs ?? 3_600_000;
    this.logger = o.logger ?? silentLogger;
    this.encrypted = new EncryptedKnowledge(o, { logger: this.logger, store: () => this.store });
    this.sink = o.knowledge;
    this.hosts = new ModelHosts(() => this.store, o.nodeId);
  }

  /** Stores received knowledge through this sink from now on (knowledgeSink(manager)); undefined stops it. */
  storeKnowledgeIn(sink: KnowledgeSink | undefined): void {
    this.sink = sink;
  }

  async initialize(): Promise<void> {
    if (this.subs.length > 0) return;
    this.encrypted.checkKey(); // a configured but weak key fails at start, not at the first encrypted message
    const group = `federation-${this.o.nodeId}`;
    this.subs = await Promise.all([
      subscribeTyped<KnowledgeWire>(this.bus, 'federationKnowledge', 'KnowledgeShared', group, (p, e) =>
        this.onKnowledge(p, e),
      ),
      subscribeTyped<CollaborationRequest>(this.bus, 'collaborationRequests', 'CollaborationRequested', group, (p) =>
        this.onRequest(p),
      ),
      subscribeTyped<ResponseWire>(this.bus, 'collaborationResponses', 'CollaborationResponded', group, (p) =>
        this.onResponse(p),
      ),
    ]);
    await this.o.topics?.ensureModelTopics([...this.hosted]);
    for (const m of this.hosted) await this.listenOnModelTopic(m);
    this.lifecycle.started();
  }

  async shutdown(): Promise<void> {
    this.lifecycle.stopped();
    await this.hosts.withdraw();
    await Promise.all([...this.subs, ...this.modelSubs.values()].map((s) => s.close()));
    this.subs = [];
    this.modelSubs.clear();
    this.waiters.wakeAll();
  }

  /** @internal The facade hands over a fresh bus and store when it restarts. */
  rebind(bus: Bus, store: StateStore): void {
    this.bus = bus;
    this.store = store;
  }

  registerModel(modelId: string, handler: ModelHandler = {}): void {
    requireId(modelId, 'modelId');
    if (typeof handler !== 'object' || handler === null)
      throw new WhaleError('ERR_INVALID_ARG', 'handler: must be an object', { field: 'handler' });
    this.models.set(modelId, handler);
  }

  /**
   * Registers a model this node hosts and has it listen on its own topic (created through the
   * TopicManager with the configured partitions), so requests sent with channel 'model' reach it.
   * Before initialize() the subscription waits for it.
   */
  async hostModel(modelId: string, handler: ModelHandler = {}): Promise<void> {
    this.registerModel(modelId, handler);
    modelTopic(modelId); // a name that cannot be a topic fails here
    this.hosted.add(modelId);
    if (this.subs.length === 0) return;
    await this.o.topics?.ensureModelTopics([modelId]);
    await this.listenOnModelTopic(modelId);
  }

  /** Forgets a model: no handler, no subscription to its topic. */
  async unregisterModel(modelId: string): Promise<void> {
    this.models.delete(modelId);
    this.hosted.delete(modelId);
    await this.hosts.remove(modelId);
    const sub = this.modelSubs.get(modelId);
    this.modelSubs.delete(modelId);
    await sub?.close();
  }

  /**
   * Nodes hosting `model` (hostModel), this one included, as far as the state store shows: every
   * node's with a shared store (Redis), only this node's in memory (see `hostsShared`).
   */
  hostsOf(model: string): Promise<string[]> {
    requireId(model, 'model');
    return this.hosts.nodesOf(model);
  }

  /** Whether hostsOf sees other nodes (a shared state store). */
  get hostsShared(): boolean {
    return this.hosts.shared;
  }

  /** Models registered on this node. */
  registeredModels(): string[] {
    return [...this.models.keys()];
  }

  /** Every knowledge message this node receives, whatever its target. */
  subscribeToFederation(listener: (k: Knowledge) => unknown): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Encrypted knowledge refused on this node so far, per reason. */
  rejections(): Record<KnowledgeRejection, number> {
    return this.encrypted.rejections();
  }

  async shareKnowledge(
    sourceModel: string,
    target: string,
    data: unknown,
    opts: { privacy?: Privacy } = {},
  ): Promise<void> {
    requireId(sourceModel, 'sourceModel');
    requireId(target, 'target');
    const privacy = optionsObject(opts).privacy ?? 'standard';
    requireJson(data, 'data', { required: true });
    this.lifecycle.assertOpen();
    let payload: KnowledgeWire;
    if (privacy === 'standard') payload = { sourceModel, targetModel: target, privacy, data };
    else if (privacy === 'anonymous') payload = { targetModel: target, privacy, data: privacyGuard(data) };
    else if (privacy === 'encrypted') {
      if (target === 'all')
        throw new WhaleError(
          'ERR_INVALID_OPTION',
          "options.privacy: 'encrypted' needs one target model (keys are per model), not 'all'",
          { field: 'options.privacy' },
        );
      payload = {
        sourceModel,
        targetModel: target,
        privacy,
        encrypted: this.encrypted.seal(sourceModel, target, data),
      };
    } else {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `options.privacy: expected standard, anonymous or encrypted, got ${JSON.stringify(privacy)}`,
        { field: 'options.privacy' },
      );
    }
    const source = privacy === 'anonymous' ? 'anonymous' : sourceModel;
    await this.bus.publish(TOPICS.federationKnowledge, createEnvelope({ type: 'KnowledgeShared', source, payload }), {
      key: target,
    });
  }

  /**
   * Asks the targets (or every model) for help; returns the request id to poll with
   * getCollaborationStatus or to wait on with awaitCollaboration. channel 'model' (targets needed)
   * sends it on each target's own topic, to the nodes hosting it (hostModel), instead of to every node.
   */
  async requestCollaboration(
    sourceModel: string,
    problem: unknown,
    opts: { timeoutMs?: number; targets?: string[]; channel?: 'shared' | 'model' } = {},
  ): Promise<string> {
    requireId(sourceModel, 'sourceModel');
    requireJson(problem, 'problem', { required: true });
    const o = optionsObject(opts);
    const timeoutMs = requireTimeout(o.timeoutMs ?? 30_000, 'options.timeoutMs');
    if (o.targets !== undefined) {
      if (!Array.isArray(o.targets))
        throw new WhaleError('ERR_INVALID_OPTION', 'options.targets: must be an array of model ids', {
          field: 'options.targets',
        });
      o.targets.forEach((t, i) => requireId(t, `options.targets[${i}]`));
    }
    const channel = o.channel ?? 'shared';
    if (channel !== 'shared' && channel !== 'model')
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `options.channel: expected shared or model, got ${JSON.stringify(channel)}`,
        {
          field: 'options.channel',
        },
      );
    if (channel === 'model') {
      if (!o.targets || o.targets.length === 0)
        throw new WhaleError('ERR_INVALID_OPTION', "options.targets: channel 'model' needs at least one target model", {
          field: 'options.targets',
        });
      o.targets.forEach((t) => modelTopic(t));
    }
    this.lifecycle.assertOpen();
    const now = Date.now();
    const req: CollaborationRequest = {
      requestId: randomUUID(),
      sourceModel,
      problem,
      expiresAt: now + timeoutMs,
      sourceNode: this.o.nodeId,
    };
    if (o.targets) req.targets = [...o.targets];
    const status: CollaborationStatus = {
      requestId: req.requestId,
      sourceModel,
      status: 'pending',
      responses: [],
      createdAt: now,
      expiresAt: req.expiresAt,
      node: this.o.nodeId,
    };
    if (req.targets) status.targets = req.targets;
    await this.store.set(key(req.requestId), status, timeoutMs + this.retentionMs);
    const topics = channel === 'model' ? [...new Set(req.targets!)].map(modelTopic) : [TOPICS.collaborationRequests];
    const envelope = createEnvelope({ type: 'CollaborationRequested', source: sourceModel, payload: req });
    await publishOrUndo(
      async () => {
        for (const t of topics) await this.bus.publish(t, envelope, { key: req.requestId });
      },
      () => this.store.delete(key(req.requestId)),
    );
    return req.requestId;
  }

  /**
   * Waits until the request is no longer pending (every target answered, or its deadline passed)
   * or `signal` aborts, and returns its status then.
   */
  async awaitCollaboration(requestId: string, o: { signal?: AbortSignal } = {}): Promise<CollaborationStatus> {
    requireId(requestId, 'requestId');
    for (;;) {
      const w = this.waiters.arm(requestId);
      try {
        const s = await this.getCollaborationStatus(requestId);
        if (s.status !== 'pending' || o.signal?.aborted || this.subs.length === 0) return s;
        // Answers recorded here wake it at once; the timer covers the deadline (and another node's store writes).
        await w.wait(Math.min(Math.max(0, s.expiresAt - Date.now()) + 1, 250), o.signal);
      } finally {
        w.dispose();
      }
    }
  }

  async respondToCollaboration(requestId: string, responder: string, solution: unknown): Promise<void> {
    requireId(requestId, 'requestId');
    requireId(responder, 'responder');
    requireJson(solution, 'solution');
    this.lifecycle.assertOpen();
    const payload: ResponseWire = { requestId, responder, solution, node: this.o.nodeId };
    await this.bus.publish(
      TOPICS.collaborationResponses,
      createEnvelope({ type: 'CollaborationResponded', source: responder, payload }),
      { key: requestId },
    );
  }

  /** The request's state; a pending request past its deadline reads as expired. */
  async getCollaborationStatus(requestId: string): Promise<CollaborationStatus> {
    requireId(requestId, 'requestId');
    const s = await this.store.get<CollaborationStatus>(key(requestId));
    if (!s)
      throw new WhaleError(
        'ERR_NOT_FOUND',
        `requestId: no collaboration request ${requestId} (unknown or expired long ago)`,
        { field: 'requestId' },
      );
    if (s.status === 'pending' && Date.now() >= s.expiresAt) {
      s.status = closedStatus(s);
      await this.store.set(key(requestId), s, this.retentionMs);
    }
    return s;
  }

  private async onKnowledge(p: KnowledgeWire, e: Envelope): Promise<void> {
    const targets =
      p.targetModel === 'all' ? [...this.models.keys()] : this.models.has(p.targetModel) ? [p.targetModel] : [];
    const base = {
      targetModel: p.targetModel,
      privacy: p.privacy,
      ...(p.sourceModel === undefined ? {} : { sourceModel: p.sourceModel }),
    };
    if (p.privacy === 'encrypted') {
      if (targets.length === 0) return;
      await this.encrypted.receive(p, e, async (messageId, data) => {
        await this.sink?.receive({ messageId, ...base, data });
        await this.models.get(p.targetModel)?.onKnowledge?.({ ...base, data });
      });
      return;
    }
    await this.sink?.receive({ messageId: e.id, ...base, data: p.data });
    for (const model of targets) await this.models.get(model)?.onKnowledge?.({ ...base, data: p.data });
    for (const l of this.listeners) await l({ ...base, data: p.data });
  }

  private async onRequest(r: CollaborationRequest, only?: string): Promise<void> {
    if (Date.now() >= r.expiresAt) return; // stale: nobody waits for it any more
    const fromHere = (r.sourceNode ?? this.o.nodeId) === this.o.nodeId;
    for (const [model, h] of this.models) {
      if (only !== undefined && model !== only) continue;
      if ((fromHere && model === r.sourceModel) || (r.targets && !r.targets.includes(model))) continue;
      if (!h.onCollaborationRequest) continue;
      const solution = await h.onCollaborationRequest(r);
      if (solution !== undefined) await this.respondToCollaboration(r.requestId, model, solution);
    }
  }

  /** A request on a hosted model's own topic: checked as the shared topic's are, answered by that model only. */
  private async listenOnModelTopic(model: string): Promise<void> {
    if (this.modelSubs.has(model)) return;
    const sub = await subscribeMessages<CollaborationRequest>(
      this.bus,
      modelTopic(model),
      'CollaborationRequested',
      `federation-${this.o.nodeId}`,
      async (p) => {
        if (this.hosted.has(model)) await this.onRequest(p, model);
      },
    );
    if (this.hosted.has(model) && this.subs.length > 0) {
      this.modelSubs.set(model, sub);
      await this.hosts.add(model);
    } else await sub.close(); // unregistered or shut down meanwhile
  }

  private async onResponse(p: ResponseWire): Promise<void> {
    const s = await this.store.get<CollaborationStatus>(key(p.requestId));
    if (!s || s.status !== 'pending') return; // not ours, or already finished: late answers are dropped
    if (s.node !== undefined && s.node !== this.o.nodeId) return; // the asking node records its answers
    const same = (r: { responder: string; node?: string }) => r.responder === p.responder && r.node === p.node;
    if (Date.now() >= s.expiresAt) {
      s.status = closedStatus(s);
    } else if (!s.responses.some(same)) {
      s.responses.push({
        responder: p.responder,
        solution: p.solution,
        at: Date.now(),
        ...(p.node === undefined ? {} : { node: p.node }),
      });
      if (s.targets && s.targets.every((t) => s.responses.some((r) => r.responder === t))) s.status = 'completed';
    }
    await this.store.set(key(p.requestId), s, Math.max(1, s.expiresAt - Date.now()) + this.retentionMs);
    this.waiters.wake(p.requestId);
  }
}

/** At its deadline a request is completed if anyone answered, else expired. */
function closedStatus(s: CollaborationStatus): CollaborationState {
  return s.responses.length > 0 ? 'completed' : 'expired';
}
