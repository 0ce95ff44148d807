/**
 * Clients the learners registered. A learner repeats its registration as a
 * heartbeat; its clients stop being selected once it is silent for
 * `silentAfterMs`, leaves, or they miss `maxMissedRounds` rounds in a row.
 */
export interface RegisteredClient {
  id: string;
  learnerId: string;
  examples: number;
  lastSeen: number;
  missedRounds: number;
  left: boolean;
}

export class ClientRegistry {
  private readonly clients = new Map<string, RegisteredClient>();

  constructor(private readonly o: { silentAfterMs: number; maxMissedRounds: number; now?: () => number }) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  register(learnerId: string, clients: ReadonlyArray<{ id: string; examples: number }>): void {
    const now = this.now();
    for (const c of clients) {
      const prev = this.clients.get(c.id);
      const rejoined = prev?.left === true || prev?.learnerId !== learnerId;
      this.clients.set(c.id, {
        id: c.id,
        learnerId,
        examples: c.examples,
        lastSeen: now,
        missedRounds: rejoined ? 0 : (prev?.missedRounds ?? 0),
        left: false,
      });
    }
  }

  /** Marks a learner's clients as gone; returns them. */
  leave(learnerId: string): string[] {
    const gone: string[] = [];
    for (const c of this.clients.values()) {
      if (c.learnerId === learnerId && !c.left) {
        c.left = true;
        gone.push(c.id);
      }
    }
    return gone;
  }

  get(id: string): RegisteredClient | undefined {
    return this.clients.get(id);
  }

  /** Clients that may be selected now. */
  active(): string[] {
    const now = this.now();
    return [...this.clients.values()]
      .filter((c) => !c.left && now - c.lastSeen <= this.o.silentAfterMs && c.missedRounds < this.o.maxMissedRounds)
      .map((c) => c.id);
  }

  answered(id: string): void {
    const c = this.clients.get(id);
    if (c) c.missedRounds = 0;
  }

  missed(id: string): void {
    const c = this.clients.get(id);
    if (c) c.missedRounds++;
  }

  get size(): number {
    return this.clients.size;
  }
}
