/**
 * FederationService: knowledge sharing between models (standard, anonymous,
 * encrypted) and collaboration requests with responses and expiry, over the
 * federation topics. Pending collaborations live in the StateStore.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../core/base/errors.js';
import type { Bus, Subscription } from '../transport/bus.js';
import { createEnvelope } from '../transport/envelope.js';
import { TOPICS } from '../transport/topics.js';
import { open, privacyGuard, seal, type Sealed } from './privacy.js';
import type { StateStore } from './state-store.js';
import { subscribeTyped } from './typed-subscribe.js';
import { requireId } from './validate.js';

export type Privacy = 'standard' | 'anonymous' | 'encrypted';

export interface Knowledge {
  /** Absent when shared anonymously. */
  sourceModel?: string;
  targetModel: string;
  privacy: Privacy;
  data: unknown;
}

export interface CollaborationRequest {
  requestId: string;
  sourceModel: string;
  problem: unknown;
  targets?: string[];
  expiresAt: number;
}

export interface ModelHandler {
  onKnowledge?(k: Knowledge): unknown;
  /** Return a solution to answer the request (or undefined to stay silent). */
  onCollaborationRequest?(r: CollaborationRequest): unknown;
}

/** completed: every target answered, or the deadline passed with answers; expired: deadline, no answer. */
export type CollaborationState = 'pending' | 'completed' | 'expired';

export interface CollaborationStatus {
  requestId: string;
  sourceModel: string;
  status: CollaborationState;
  targets?: string[];
  responses: Array<{ responder: string; solution: unknown; at: number }>;
  createdAt: number;
  expiresAt: number;
}

export interface FederationServiceOptions {
  nodeId: string;
  /** Secret the per-model AES keys derive from ($WHALE_FEDERATION_SECRET). Required for 'encrypted'. */
  secret?: string;
  /** How long finished collaboration records are kept (default 1 h). */
  retentionMs?: number;
}

type KnowledgeWire = { sourceModel?: string; targetModel: string; privacy: Privacy; data?: unknown; encrypted?: Sealed };
type ResponseWire = { requestId: string; responder: string; solution: unknown };

const key = (id: string) => `collab:${id}`;

export class FederationService {
  private readonly models = new Map<string, ModelHandler>();
  private readonly listeners = new Set<(k: Knowledge) => unknown>();
  private subs: Subscription[] = [];
  private readonly retentionMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly store: StateStore,
    private readonly o: FederationServiceOptions,
  ) {
    this.retentionMs = o.retentionMs ?? 3_600_000;
  }

  async initialize(): Promise<void> {
    if (this.subs.length > 0) return;
    const group = `federation-${this.o.nodeId}`;
    this.subs = await Promise.all([
      subscribeTyped<KnowledgeWire>(this.bus, 'federationKnowledge', 'KnowledgeShared', group, (p) => this.onKnowledge(p)),
      subscribeTyped<CollaborationRequest>(this.bus, 'collaborationRequests', 'CollaborationRequested', group, (p) => this.onRequest(p)),
      subscribeTyped<ResponseWire>(this.bus, 'collaborationResponses', 'CollaborationResponded', group, (p) => this.onResponse(p)),
    ]);
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.close()));
    this.subs = [];
  }

  registerModel(modelId: string, handler: ModelHandler = {}): void {
    requireId(modelId, 'modelId');
    this.models.set(modelId, handler);
  }

  /** Every knowledge message this node receives, whatever its target. */
  subscribeToFederation(listener: (k: Knowledge) => unknown): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async shareKnowledge(sourceModel: string, target: string, data: unknown, opts: { privacy?: Privacy } = {}): Promise<void> {
    requireId(sourceModel, 'sourceModel');
    requireId(target, 'target');
    const privacy = opts.privacy ?? 'standard';
    let payload: KnowledgeWire;
    if (privacy === 'standard') payload = { sourceModel, targetModel: target, privacy, data };
    else if (privacy === 'anonymous') payload = { targetModel: target, privacy, data: privacyGuard(data) };
    else if (privacy === 'encrypted') {
      if (target === 'all') throw new WhaleError('ERR_INVALID_OPTION', "options.privacy: 'encrypted' needs one target model (keys are per model), not 'all'", { field: 'options.privacy' });
      payload = { sourceModel, targetModel: target, privacy, encrypted: seal(this.secret(), target, data) };
    } else {
      throw new WhaleError('ERR_INVALID_OPTION', `options.privacy: expected standard, anonymous or encrypted, got ${JSON.stringify(privacy)}`, { field: 'options.privacy' });
    }
    const source = privacy === 'anonymous' ? 'anonymous' : sourceModel;
    await this.bus.publish(TOPICS.federationKnowledge, createEnvelope({ type: 'KnowledgeShared', source, payload }), { key: target });
  }

  /** Asks the targets (or every model) for help; returns the request id to poll with getCollaborationStatus. */
  async requestCollaboration(sourceModel: string, problem: unknown, opts: { timeoutMs?: number; targets?: string[] } = {}): Promise<string> {
    requireId(sourceModel, 'sourceModel');
    const timeoutMs = opts.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new WhaleError('ERR_INVALID_OPTION', `options.timeoutMs: must be > 0, got ${timeoutMs}`, { field: 'options.timeoutMs' });
    const now = Date.now();
    const req: CollaborationRequest = { requestId: randomUUID(), sourceModel, problem, expiresAt: now + timeoutMs };
    if (opts.targets) req.targets = [...opts.targets];
    const status: CollaborationStatus = { requestId: req.requestId, sourceModel, status: 'pending', responses: [], createdAt: now, expiresAt: req.expiresAt };
    if (req.targets) status.targets = req.targets;
    await this.store.set(key(req.requestId), status, timeoutMs + this.retentionMs);
    await this.bus.publish(TOPICS.collaborationRequests, createEnvelope({ type: 'CollaborationRequested', source: sourceModel, payload: req }), { key: req.requestId });
    return req.requestId;
  }

  async respondToCollaboration(requestId: string, responder: string, solution: unknown): Promise<void> {
    requireId(requestId, 'requestId');
    requireId(responder, 'responder');
    const payload: ResponseWire = { requestId, responder, solution };
    await this.bus.publish(TOPICS.collaborationResponses, createEnvelope({ type: 'CollaborationResponded', source: responder, payload }), { key: requestId });
  }

  /** The request's state; a pending request past its deadline reads as expired. */
  async getCollaborationStatus(requestId: string): Promise<CollaborationStatus> {
    const s = await this.store.get<CollaborationStatus>(key(requestId));
    if (!s) throw new WhaleError('ERR_NOT_FOUND', `requestId: no collaboration request ${requestId} (unknown or expired long ago)`, { field: 'requestId' });
    if (s.status === 'pending' && Date.now() >= s.expiresAt) {
      s.status = closedStatus(s);
      await this.store.set(key(requestId), s, this.retentionMs);
    }
    return s;
  }

  private secret(): string {
    const s = this.o.secret ?? process.env.WHALE_FEDERATION_SECRET;
    if (!s) throw new WhaleError('ERR_INVALID_OPTION', "secret: 'encrypted' sharing needs a secret (WHALE_FEDERATION_SECRET)", { field: 'secret' });
    return s;
  }

  private async onKnowledge(p: KnowledgeWire): Promise<void> {
    const targets = p.targetModel === 'all' ? [...this.models.keys()] : this.models.has(p.targetModel) ? [p.targetModel] : [];
    const base = { targetModel: p.targetModel, privacy: p.privacy, ...(p.sourceModel === undefined ? {} : { sourceModel: p.sourceModel }) };
    for (const model of targets) {
      const data = p.privacy === 'encrypted' ? open(this.secret(), model, p.encrypted!) : p.data;
      await this.models.get(model)?.onKnowledge?.({ ...base, data });
    }
    if (p.privacy !== 'encrypted') for (const l of this.listeners) await l({ ...base, data: p.data });
  }

  private async onRequest(r: CollaborationRequest): Promise<void> {
    if (Date.now() >= r.expiresAt) return; // stale: nobody waits for it any more
    for (const [model, h] of this.models) {
      if (model === r.sourceModel || (r.targets && !r.targets.includes(model)) || !h.onCollaborationRequest) continue;
      const solution = await h.onCollaborationRequest(r);
      if (solution !== undefined) await this.respondToCollaboration(r.requestId, model, solution);
    }
  }

  private async onResponse(p: ResponseWire): Promise<void> {
    const s = await this.store.get<CollaborationStatus>(key(p.requestId));
    if (!s || s.status !== 'pending') return; // not ours, or already finished: late answers are dropped
    if (Date.now() >= s.expiresAt) {
      s.status = closedStatus(s);
    } else if (!s.responses.some((r) => r.responder === p.responder)) {
      s.responses.push({ responder: p.responder, solution: p.solution, at: Date.now() });
      if (s.targets && s.targets.every((t) => s.responses.some((r) => r.responder === t))) s.status = 'completed';
    }
    await this.store.set(key(p.requestId), s, Math.max(1, s.expiresAt - Date.now()) + this.retentionMs);
  }
}

/** At its deadline a request is completed if anyone answered, else expired. */
function closedStatus(s: CollaborationStatus): CollaborationState {
  return s.responses.length > 0 ? 'completed' : 'expired';
}
