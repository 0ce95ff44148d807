import { WhaleError } from '../core/base/errors.js';

/**
 * Whether a service was shut down: calls after shutdown() fail before they
 * store or publish anything, until initialize() starts the service again.
 */
export class Lifecycle {
  private closed = false;

  constructor(private readonly service: string) {}

  started(): void {
    this.closed = false;
  }

  stopped(): void {
    this.closed = true;
  }

  assertOpen(): void {
    if (this.closed) throw new WhaleError('ERR_BUS_CLOSED', `${this.service}: shut down; call initialize() to start it again`);
  }
}

/** Runs publish after a state write; if publish fails, undoes the write (best effort) and rethrows the publish error. */
export async function publishOrUndo(publish: () => Promise<void>, undo: () => Promise<unknown>): Promise<void> {
  try {
    await publish();
  } catch (err) {
    await undo().catch(() => undefined);
    throw err;
  }
}
