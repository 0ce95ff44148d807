/**
 * Callers waiting on collaboration requests (FederationService.awaitCollaboration): an answer
 * recorded on this node wakes them at once; otherwise they wake after the time they give.
 * Arm before reading the request's state, so an answer recorded in between is not missed.
 */
export class CollaborationWaiters {
  private readonly byId = new Map<string, Set<() => void>>();

  /** A wake-up for `id`: wait(ms, signal) resolves when woken, after ms, or on abort; dispose() when done. */
  arm(id: string): { wait(ms: number, signal?: AbortSignal): Promise<void>; dispose(): void } {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const set = this.byId.get(id) ?? new Set();
    this.byId.set(id, set);
    set.add(wake);
    return {
      wait: async (ms, signal) => {
        const timer = setTimeout(wake, ms);
        signal?.addEventListener('abort', wake, { once: true });
        await woken;
        clearTimeout(timer);
        signal?.removeEventListener('abort', wake);
      },
      dispose: () => {
        set.delete(wake);
        if (set.size === 0 && this.byId.get(id) === set) this.byId.delete(id);
      },
    };
  }

  wake(id: string): void {
    for (const w of this.byId.get(id) ?? []) w();
  }

  wakeAll(): void {
    for (const set of this.byId.values()) for (const w of set) w();
  }
}
