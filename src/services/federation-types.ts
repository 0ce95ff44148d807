/** The FederationService's public types: knowledge, collaboration requests and their status, model handlers. */
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
  /** The node that asked: only it records the answers, and its own copy of `sourceModel` does not answer. */
  sourceNode?: string;
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
  /** One answer per responder and node (`node`: where the responder runs, when it said). */
  responses: Array<{ responder: string; solution: unknown; at: number; node?: string }>;
  createdAt: number;
  expiresAt: number;
  /** The node that asked (it alone records answers). */
  node?: string;
}
