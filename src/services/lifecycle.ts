import { WhaleError } from '../common/errors.js';

/**
 * Whether a service is running: calls before initialize() or after shutdown()
 * fail before they store or publish anything (a session registered, a data
 * request given an id or knowledge shared by a service that is not listening
 * would be lost or never answered).
 */
export class Lifecycle {
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(private readonly service: string) {}

  started(): void {
    this.state = 'open';
  }

  stopped(): void {
    this.state = 'closed';
  }

  assertOpen(): void {
    if (this.state === 'new')
      throw new WhaleError('ERR_INVALID_STATE', `${this.service}: not started; call initialize() first`);
    if (this.state === 'closed')
      throw new WhaleError('ERR_BUS_CLOSED', `${this.service}: shut down; call initialize() to start it again`);
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
