/** Payloads of the federation channels (src/transport/asyncapi.json is the reference). */
import type { TensorRef } from './claim-check.js';

export type Uplink = 'f32' | 'int8' | 'fp16' | 'topk';
export const UPLINKS: readonly Uplink[] = ['f32', 'int8', 'fp16', 'topk'];

export interface ClientsRegistered {
  federationId: string;
  learnerId: string;
  clients: Array<{ id: string; examples: number }>;
}

export interface LearnerLeft {
  federationId: string;
  learnerId: string;
  reason: string;
}

export interface RoundConfig {
  epochs: number;
  /** 0: the whole shard in one batch (B = infinity). */
  batch: number;
  lr: number;
  /** FedProx proximal term (0: plain FedAvg). */
  mu: number;
  uplink: Uplink;
  topkRatio?: number;
  inlineBytes: number;
}

export interface RoundStarted {
  federationId: string;
  round: number;
  clients: string[];
  model: TensorRef;
  deadline: number;
  config: RoundConfig;
}

export interface FederationEnded {
  federationId: string;
  reason: string;
  round?: number;
}

export interface UpdateSubmitted {
  federationId: string;
  round: number;
  clientId: string;
  learnerId: string;
  examples: number;
  update: TensorRef;
  trainLoss?: number;
  localAccuracy?: number;
  localLoss?: number;
  trainMs?: number;
}

export interface TaskFailed {
  federationId: string;
  round: number;
  clientId: string;
  learnerId: string;
  reason: string;
}

export const MESSAGE = {
  registered: 'FederationClientsRegistered',
  left: 'FederationLearnerLeft',
  roundStarted: 'FederationRoundStarted',
  ended: 'FederationEnded',
  update: 'FederationUpdateSubmitted',
  failed: 'FederationTaskFailed',
} as const;
