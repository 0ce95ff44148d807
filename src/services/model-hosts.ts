/**
 * Which nodes host which models: each node writes `federation:host:<model>:<node>` into the
 * StateStore for every model it hosts (FederationService.hostModel), with a TTL it refreshes while
 * it runs, and removes it when the model or the node goes. With a shared store (Redis) every node
 * sees every node's entries, so a node can tell whether asking another node's models is worth a
 * wait; an in-memory store sees only its own node.
 */
import { MemoryStateStore, type StateStore } from './state-store.js';

const PREFIX = 'federation:host:';

export class ModelHosts {
  private readonly mine = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** nodesOf answers, kept a few seconds (a Redis SCAN walks the keyspace). */
  private readonly seen = new Map<string, { at: number; nodes: Promise<string[]> }>();

  constructor(
    private readonly store: () => StateStore,
    private readonly node: string,
    private readonly ttlMs = 60_000,
  ) {}

  /** Whether other nodes' entries can be seen here (a shared store, not the in-memory one). */
  get shared(): boolean {
    return !(this.store() instanceof MemoryStateStore);
  }

  async add(model: string): Promise<void> {
    this.mine.add(model);
    await this.write(model);
    this.timer ??= setInterval(() => {
      for (const m of this.mine) void this.write(m).catch(() => undefined); // the next refresh tries again
    }, this.ttlMs / 3).unref();
  }

  async remove(model: string): Promise<void> {
    this.mine.delete(model);
    await this.store()
      .delete(PREFIX + model + ':' + this.node)
      .catch(() => undefined);
  }

  /** Removes every entry of this node (at shutdown; best effort: the TTL ends them otherwise). */
  async withdraw(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.mine].map((m) => this.remove(m)));
  }

  /** Nodes hosting `model`, as far as this node's store shows (read at most every `ttlMs / 12`). */
  nodesOf(model: string): Promise<string[]> {
    const now = Date.now();
    const cached = this.seen.get(model);
    if (cached && now - cached.at < this.ttlMs / 12) return cached.nodes;
    const prefix = `${PREFIX}${model}:`;
    const nodes = this.store()
      .keys(prefix)
      .then((ks) => ks.map((k) => k.slice(prefix.length)));
    nodes.catch(() => this.seen.delete(model));
    if (this.seen.size > 1000) this.seen.clear();
    this.seen.set(model, { at: now, nodes });
    return nodes;
  }

  private write(model: string): Promise<void> {
    return this.store().set(PREFIX + model + ':' + this.node, { model, node: this.node, at: Date.now() }, this.ttlMs);
  }
}
