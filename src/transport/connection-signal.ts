/**
 * The signal that a request's connection closed: one AbortSignal per connection (keep-alive requests
 * share it), aborted when the socket closes, i.e. when the client goes away before its answer. Not one
 * per request: in Node 20 an AbortSignal outlives young-generation GCs, and each request's signal
 * dragged the request's objects into the old generation (a mark-compact every ~0.8 s at concurrency 1;
 * bench/RESULTS.md, "The tail at c = 1").
 */
import { setMaxListeners } from 'node:events';
import type { IncomingMessage } from 'node:http';

const connectionAborts = new WeakMap<object, AbortController>();

export function connectionSignal(req: IncomingMessage): AbortSignal {
  const socket = req.socket;
  const known = connectionAborts.get(socket);
  if (known) return known.signal;
  const controller = new AbortController();
  // Every request in flight on the connection (pipelined ones too) listens: no max-listeners warning.
  setMaxListeners(Infinity, controller.signal);
  connectionAborts.set(socket, controller);
  if (socket.destroyed) controller.abort();
  else socket.once('close', () => controller.abort());
  return controller.signal;
}
