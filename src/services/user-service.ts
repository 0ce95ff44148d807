/**
 * UserService: sessions, user requests, and streamed answers (and a model's
 * "thinking") with per-session sequence numbers so a consumer can reassemble
 * them in order and detect gaps (see StreamAssembler). Idle sessions expire.
 * Sessions live in the StateStore (Redis when REDIS_URL is set, so any node
 * can continue one; memory otherwise) and may be tied to the model that serves
 * them. Bounded: sessions open per node (maxSessions), metadata bytes
 * (maxMetadataBytes), idle expiry (idleTimeoutMs); the store has its own bounds.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../common/errors.js';
import type { Bus, Subscription } from '../transport/bus.js';
import { createEnvelope } from '../transport/envelope.js';
import { TOPICS } from '../transport/topics.js';
import type { StateStore } from './state-store.js';
import { Lifecycle, publishOrUndo } from './lifecycle.js';
import { subscribeTyped } from './typed-subscribe.js';
import { intOption, isPlainObject, optionsObject, requireId, requireJson, requireTimeout } from '../common/validate.js';

export interface SessionInfo {
  sessionId: string;
  userId: string;
  status: 'active' | 'ended' | 'expired';
  createdAt: number;
  lastActivity: number;
  /** Next sequence number of the session's stream. */
  nextSeq: number;
  metadata: Record<string, unknown>;
  /** The model that serves the session's requests (a request naming another is refused). */
  model?: string;
  endReason?: string;
}

export interface ResponseChunk {
  sessionId: string;
  seq: number;
  kind: 'response' | 'thinking';
  chunk: unknown;
  final: boolean;
}

export interface UserRequest {
  sessionId: string;
  userId?: string;
  content: unknown;
}

export interface UserServiceOptions {
  nodeId: string;
  /** Sessions idle this long expire (default 30 min). */
  idleTimeoutMs?: number;
  /** How often idle sessions are swept (default 60 s). */
  sweepIntervalMs?: number;
  /** Sessions this node opened that are still open (not ended or idle) at most (default 10,000); past it ERR_OVERLOADED. */
  maxSessions?: number;
  /** A session's metadata as JSON text, bytes at most (default 4096). */
  maxMetadataBytes?: number;
}

const key = (id: string) => `session:${id}`;

export class UserService {
  private readonly idleMs: number;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly requestHandlers = new Set<(r: UserRequest) => unknown>();
  private sub: Subscription | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly lifecycle = new Lifecycle('user service');
  private readonly maxSessions: number;
  private readonly maxMetadataBytes: number;
  /** Sessions this node opened and has not seen end: id → last activity seen here. */
  private readonly open = new Map<string, number>();

  constructor(
    private bus: Bus,
    private store: StateStore,
    private readonly o: UserServiceOptions,
  ) {
    this.idleMs = requireTimeout(o.idleTimeoutMs ?? 30 * 60_000, 'options.idleTimeoutMs');
    if (o.sweepIntervalMs !== undefined) requireTimeout(o.sweepIntervalMs, 'options.sweepIntervalMs');
    this.maxSessions = intOption(o.maxSessions, 10_000, 'options.maxSessions');
    this.maxMetadataBytes = intOption(o.maxMetadataBytes, 4096, 'options.maxMetadataBytes');
  }

  /** Sessions this node opened that are still open as it sees them. */
  get openSessions(): number {
    this.pruneOpen();
    return this.open.size;
  }

  /** @internal The facade hands over a fresh bus and store when it restarts. */
  rebind(bus: Bus, store: StateStore): void {
    this.bus = bus;
    this.store = store;
  }

  async initialize(): Promise<void> {
    if (this.sub) return;
    this.sub = await subscribeTyped<UserRequest>(
      this.bus,
      'userRequests',
      'UserRequest',
      `users-${this.o.nodeId}`,
      async (r) => {
        for (const h of this.requestHandlers) await h(r);
      },
    );
    this.sweeper = setInterval(() => void this.expireIdle().catch(() => undefined), this.o.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
    this.lifecycle.started();
  }

  async shutdown(): Promise<void> {
    this.lifecycle.stopped();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.sub?.close();
    this.sub = undefined;
  }

  /**
   * Stores the session and announces it; if the announcement fails, the session is removed again.
   * opts.model ties the session to the model that serves it (bus requests without a model go to it).
   */
  async registerUserSession(
    userId: string,
    metadata: Record<string, unknown> = {},
    opts: { model?: string } = {},
  ): Promise<SessionInfo> {
    requireId(userId, 'userId');
    if (!isPlainObject(metadata))
      throw new WhaleError('ERR_INVALID_ARG', 'metadata: must be an object', { field: 'metadata' });
    requireJson(metadata, 'metadata');
    const bytes = Buffer.byteLength(JSON.stringify(metadata));
    if (bytes > this.maxMetadataBytes)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `metadata: ${bytes} bytes of JSON, more than the ${this.maxMetadataBytes} allowed (options.maxMetadataBytes)`,
        { field: 'metadata' },
      );
    const model = optionsObject(opts).model;
    if (model !== undefined) requireId(model, 'options.model');
    this.lifecycle.assertOpen();
    if (this.open.size >= this.maxSessions) this.pruneOpen();
    if (this.open.size >= this.maxSessions)
      throw new WhaleError(
        'ERR_OVERLOADED',
        `userId: this node has ${this.open.size} open sessions (options.maxSessions ${this.maxSessions}): end some or retry later`,
        { field: 'userId', retriable: true, retryAfterMs: 1000 },
      );
    const now = Date.now();
    const s: SessionInfo = {
      sessionId: randomUUID(),
      userId,
      status: 'active',
      createdAt: now,
      lastActivity: now,
      nextSeq: 0,
      metadata,
      ...(model === undefined ? {} : { model }),
    };
    await this.store.set(key(s.sessionId), s, this.idleMs * 2);
    this.open.set(s.sessionId, now);
    await publishOrUndo(
      () => this.event(s, 'started'),
      async () => {
        this.open.delete(s.sessionId);
        await this.store.delete(key(s.sessionId));
      },
    );
    return s;
  }

  /** Sends one chunk of the answer; resolves with its sequence number. */
  async streamResponse(sessionId: string, chunk: unknown, opts: { final?: boolean } = {}): Promise<number> {
    const final = optionsObject(opts).final ?? false;
    if (typeof final !== 'boolean')
      throw new WhaleError('ERR_INVALID_OPTION', 'options.final: must be a boolean', { field: 'options.final' });
    return this.emit(sessionId, 'response', chunk, final);
  }

  sendThinkingProcess(sessionId: string, thought: unknown): Promise<number> {
    return this.emit(sessionId, 'thinking', thought, false);
  }

  /** A user's request, published for the models (subscribeToUserRequests). */
  async receiveUserRequest(sessionId: string, content: unknown): Promise<void> {
    requireId(sessionId, 'sessionId');
    requireJson(content, 'content', { required: true });
    this.lifecycle.assertOpen();
    const s = await this.touch(sessionId);
    const payload: UserRequest = { sessionId, userId: s.userId, content };
    await this.bus.publish(
      TOPICS.userRequests,
      createEnvelope({ type: 'UserRequest', source: `user:${s.userId}`, payload }),
      { key: sessionId },
    );
  }

  subscribeToUserRequests(handler: (r: UserRequest) => unknown): () => void {
    this.requestHandlers.add(handler);
    return () => this.requestHandlers.delete(handler);
  }

  async endUserSession(sessionId: string, reason = 'ended by the caller'): Promise<SessionInfo> {
    requireId(sessionId, 'sessionId');
    if (typeof reason !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'reason: must be a string', { field: 'reason' });
    this.lifecycle.assertOpen();
    return this.locked(sessionId, async () => {
      const s = await this.active(sessionId);
      const before = { ...s };
      s.status = 'ended';
      s.endReason = reason;
      await this.store.set(key(sessionId), s, this.idleMs);
      this.open.delete(sessionId);
      await publishOrUndo(
        () => this.event(s, 'ended', reason),
        () => this.store.set(key(sessionId), before, this.idleMs * 2),
      );
      return s;
    });
  }

  async getSessionInfo(sessionId: string): Promise<SessionInfo> {
    requireId(sessionId, 'sessionId');
    const s = await this.store.get<SessionInfo>(key(sessionId));
    if (!s) throw new WhaleError('ERR_NOT_FOUND', `sessionId: no session ${sessionId}`, { field: 'sessionId' });
    if (s.status === 'active' && Date.now() - s.lastActivity >= this.idleMs) return this.expire(s);
    return s;
  }

  /** Expires every idle session now (also run periodically). */
  async expireIdle(): Promise<number> {
    let n = 0;
    for (const k of await this.store.keys('session:')) {
      const s = await this.store.get<SessionInfo>(k);
      if (s?.status === 'active' && Date.now() - s.lastActivity >= this.idleMs) {
        await this.expire(s);
        n++;
      }
    }
    return n;
  }

  private async emit(sessionId: string, kind: ResponseChunk['kind'], chunk: unknown, final: boolean): Promise<number> {
    requireId(sessionId, 'sessionId');
    requireJson(chunk, kind === 'thinking' ? 'thought' : 'chunk');
    this.lifecycle.assertOpen();
    // One session's chunks are numbered and published strictly one after another.
    return this.locked(sessionId, async () => {
      const s = await this.active(sessionId);
      const payload: ResponseChunk = { sessionId, seq: s.nextSeq, kind, chunk, final };
      await this.bus.publish(
        TOPICS.userResponses,
        createEnvelope({ type: 'ResponseChunk', source: this.o.nodeId, payload }),
        { key: sessionId },
      );
      s.nextSeq++;
      s.lastActivity = Date.now();
      await this.store.set(key(sessionId), s, this.idleMs * 2);
      if (this.open.has(sessionId)) this.open.set(sessionId, s.lastActivity);
      return payload.seq;
    });
  }

  private async touch(sessionId: string): Promise<SessionInfo> {
    return this.locked(sessionId, async () => {
      const s = await this.active(sessionId);
      s.lastActivity = Date.now();
      await this.store.set(key(sessionId), s, this.idleMs * 2);
      if (this.open.has(sessionId)) this.open.set(sessionId, s.lastActivity);
      return s;
    });
  }

  private async active(sessionId: string): Promise<SessionInfo> {
    requireId(sessionId, 'sessionId');
    const s = await this.getSessionInfo(sessionId);
    if (s.status !== 'active')
      throw new WhaleError('ERR_CONFLICT', `sessionId: session ${sessionId} is ${s.status}`, { field: 'sessionId' });
    return s;
  }

  /** Marks an idle session expired and announces it; if the announcement fails, the next sweep tries again. */
  private async expire(s: SessionInfo): Promise<SessionInfo> {
    const before = { ...s };
    s.status = 'expired';
    s.endReason = 'idle timeout';
    await this.store.set(key(s.sessionId), s, this.idleMs);
    this.open.delete(s.sessionId);
    await publishOrUndo(
      () => this.event(s, 'expired', 'idle timeout'),
      () => this.store.set(key(s.sessionId), before, this.idleMs * 2),
    );
    return s;
  }

  private async event(s: SessionInfo, event: 'started' | 'ended' | 'expired', reason?: string): Promise<void> {
    const payload = { sessionId: s.sessionId, userId: s.userId, event, ...(reason ? { reason } : {}) };
    await this.bus.publish(
      TOPICS.userSessions,
      createEnvelope({ type: 'SessionEvent', source: this.o.nodeId, payload }),
      { key: s.sessionId },
    );
  }

  /** Forgets sessions not seen active here for the idle timeout (they expired, or another node serves them now). */
  private pruneOpen(): void {
    const before = Date.now() - this.idleMs;
    for (const [id, seen] of this.open) if (seen < before) this.open.delete(id);
  }

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }
}

/**
 * Consumer side of a session stream: feed chunks in any order, take them out
 * in sequence; missing() lists the gaps below the highest seq seen.
 */
export class StreamAssembler {
  private readonly pending = new Map<number, ResponseChunk>();
  private next = 0;
  private highest = -1;
  done = false;

  /** Returns the chunks that became deliverable, in order (duplicates are ignored). */
  push(c: ResponseChunk): ResponseChunk[] {
    if (c.seq < this.next || this.pending.has(c.seq)) return [];
    this.pending.set(c.seq, c);
    this.highest = Math.max(this.highest, c.seq);
    const out: ResponseChunk[] = [];
    for (let x = this.pending.get(this.next); x; x = this.pending.get(this.next)) {
      this.pending.delete(this.next++);
      out.push(x);
      if (x.final) this.done = true;
    }
    return out;
  }

  missing(): number[] {
    const gaps: number[] = [];
    for (let s = this.next; s < this.highest; s++) if (!this.pending.has(s)) gaps.push(s);
    return gaps;
  }
}
