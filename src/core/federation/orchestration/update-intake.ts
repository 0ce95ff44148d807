/**
 * Checks one incoming update against the open round before anything of it
 * can reach the aggregate: schema, federation, client, round, deadline,
 * duplicates, then the claim-checked tensor (hash, codec checksum, shape)
 * and its values (NaN/Infinity). Every refusal is counted with its reason.
 */
import { isWhaleError } from '../../../common/errors.js';
import type { Envelope } from '../../../transport/envelope.js';
import { payloadProblem } from '../../../transport/topics.js';
import { refBytes, type ClaimCheck, type TensorRef } from './claim-check.js';
import type { ClientRegistry } from './client-registry.js';
import { MESSAGE, type UpdateSubmitted } from './messages.js';
import type { RejectReason, TaskManager } from './task-manager.js';

export interface AcceptedUpdate {
  clientId: string;
  examples: number;
  delta: Float32Array;
  /** Where the update came from (its stored blobs are released after the round). */
  ref: TensorRef;
  bytes: number;
  trainLoss?: number;
  localAccuracy?: number;
}

export interface OpenRound {
  round: number;
  clients: ReadonlySet<string>;
  deadline: number;
  params: number;
  accepted: Map<string, AcceptedUpdate>;
  /** Called when an update was accepted or a task failed (the coordinator checks whether all answered). */
  onChange: () => void;
}

export class UpdateIntake {
  open: OpenRound | undefined;
  /** Highest round ever opened, to tell stale updates from ones for rounds not started. */
  lastRound = 0;

  constructor(
    private readonly federationId: string,
    private readonly registry: ClientRegistry,
    private readonly tasks: TaskManager,
    private readonly claims: ClaimCheck,
    private readonly now: () => number = Date.now,
  ) {}

  async handle(e: Envelope): Promise<void> {
    const p = e.payload as Partial<UpdateSubmitted> | undefined;
    if (typeof p === 'object' && p !== null && p.federationId !== undefined && p.federationId !== this.federationId)
      return; // another federation's
    if (e.type === MESSAGE.failed) return this.failed(e);
    if (e.type !== MESSAGE.update)
      return this.reject(undefined, undefined, 'malformed', `message type '${e.type}' on the updates topic`);
    const problem = payloadProblem(MESSAGE.update, e.payload);
    const u = e.payload as UpdateSubmitted;
    if (problem) return this.reject(numberOr(p?.round), stringOr(p?.clientId), 'malformed', problem);
    if (!(Number.isInteger(u.examples) && u.examples > 0))
      return this.reject(u.round, u.clientId, 'malformed', `examples: must be an integer > 0, got ${u.examples}`);
    const client = this.registry.get(u.clientId);
    if (!client) return this.reject(u.round, u.clientId, 'unknown-client', `client '${u.clientId}' is not registered`);
    const open = this.open;
    if (u.round < this.lastRound || (!open && u.round === this.lastRound)) {
      const late = this.tasks.stateOf(u.round, u.clientId) === 'missing';
      if (late) this.tasks.setState(u.round, u.clientId, 'late');
      return this.reject(
        u.round,
        u.clientId,
        late ? 'late' : 'stale-round',
        `round ${u.round} is closed (current ${this.lastRound})`,
      );
    }
    if (!open || u.round !== open.round)
      return this.reject(
        u.round,
        u.clientId,
        'wrong-round',
        `round ${u.round} has not started (current ${this.lastRound})`,
      );
    if (!open.clients.has(u.clientId))
      return this.reject(
        u.round,
        u.clientId,
        'not-selected',
        `client '${u.clientId}' was not selected for round ${u.round}`,
      );
    const state = this.tasks.stateOf(u.round, u.clientId);
    if (state !== 'sent')
      return this.reject(
        u.round,
        u.clientId,
        'duplicate',
        `client '${u.clientId}' already answered round ${u.round} (${state})`,
      );
    if (this.now() > open.deadline) {
      this.tasks.setState(u.round, u.clientId, 'late');
      return this.reject(u.round, u.clientId, 'late', `arrived ${this.now() - open.deadline} ms after the deadline`);
    }
    this.tasks.setState(u.round, u.clientId, 'trained'); // claims the slot before the await: a second copy is a duplicate
    let delta: Float32Array;
    try {
      delta = await this.claims.unpack(u.update, open.params, 'update');
    } catch (err) {
      this.tasks.setState(u.round, u.clientId, 'rejected');
      return this.reject(u.round, u.clientId, reasonOf(err), (err as Error).message);
    }
    if (this.open !== open)
      return this.reject(u.round, u.clientId, 'late', 'the round closed while the update was being read');
    for (let i = 0; i < delta.length; i++) {
      if (!Number.isFinite(delta[i]!)) {
        this.tasks.setState(u.round, u.clientId, 'rejected');
        return this.reject(u.round, u.clientId, 'non-finite', `update[${i}] is ${delta[i]}`);
      }
    }
    this.tasks.setState(u.round, u.clientId, 'received');
    open.accepted.set(u.clientId, {
      clientId: u.clientId,
      examples: u.examples,
      delta,
      ref: u.update,
      bytes: refBytes(u.update),
      ...(u.trainLoss === undefined ? {} : { trainLoss: u.trainLoss }),
      ...(u.localAccuracy === undefined ? {} : { localAccuracy: u.localAccuracy }),
    });
    open.onChange();
  }

  private failed(e: Envelope): void {
    const problem = payloadProblem(MESSAGE.failed, e.payload);
    const p = e.payload as { round: number; clientId: string; reason: string };
    if (problem) return this.reject(undefined, undefined, 'malformed', problem);
    const open = this.open;
    if (!open || open.round !== p.round || this.tasks.stateOf(p.round, p.clientId) !== 'sent') return;
    this.tasks.setState(p.round, p.clientId, 'failed', p.reason);
    void this.tasks.event('federation.task.failed', { round: p.round, clientId: p.clientId, reason: p.reason });
    open.onChange();
  }

  private reject(round: number | undefined, clientId: string | undefined, reason: RejectReason, detail: string): void {
    this.tasks.reject({ round: round ?? -1, clientId, reason, detail });
  }
}

function reasonOf(err: unknown): RejectReason {
  if (isWhaleError(err, 'ERR_CHECKSUM')) return 'hash-mismatch';
  if (isWhaleError(err, 'ERR_NOT_FOUND')) return 'missing-blob';
  if (isWhaleError(err, 'ERR_SHAPE_MISMATCH')) return 'shape';
  if (isWhaleError(err, 'ERR_INVALID_MESSAGE')) return 'malformed';
  // The codec refuses to decode NaN/Infinity (a blob the encoder could not have written).
  if (isWhaleError(err, 'ERR_CORRUPT') && /NaN or Infinity/.test(err.message)) return 'non-finite';
  return 'corrupt';
}

const numberOr = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const stringOr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
