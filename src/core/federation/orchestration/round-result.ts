import type { RoundDefenseReport } from '../security/round-defense.js';

/** What one completed round reports (printed by `whale federate`, kept in checkpoints). */
export interface RoundResult {
  round: number;
  /** Attempts it took (a round that could not reach minClients is retried). */
  attempts: number;
  selected: number;
  received: number;
  /** Selected clients that did not answer by the deadline (stragglers, dead learners). */
  missing: string[];
  failed: string[];
  rejected: number;
  /** Centralized evaluation on the held-out test set (when an evaluator is given). */
  testAccuracy?: number;
  testLoss?: number;
  /** Federated evaluation: clients' accuracy of the received global model on their data, weighted by examples. */
  federatedAccuracy?: number;
  trainLoss?: number;
  /** Payload bytes the clients sent (updates) and received (the global model, once per selected client). */
  bytesUp: number;
  bytesDown: number;
  clientLr: number;
  serverLr: number;
  aggregateDevice: string;
  seconds: number;
  /** Attack, norm-bound filter and DP figures of the round (security/round-defense), when a roundHook runs. */
  security?: RoundDefenseReport;
}
