/** Runs one batch on the executor and reports exactly one outcome: results, failure or timeout. */
import { WhaleError, isWhaleError } from '../../common/errors.js';
import type { BatchExecutor } from './scheduler-config.js';

export type BatchOutcome =
  | { kind: 'results'; results: unknown[] }
  | { kind: 'failed'; error: WhaleError }
  | { kind: 'timeout'; error: WhaleError };

export function executeBatch(
  executor: BatchExecutor,
  model: string,
  inputs: unknown[],
  timeoutMs: number | undefined,
  done: (outcome: BatchOutcome) => void,
): void {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const settle = (o: BatchOutcome): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(o);
  };
  if (timeoutMs !== undefined) {
    // A late result after the timeout is dropped: its requests were already answered.
    timer = setTimeout(() => {
      settle({
        kind: 'timeout',
        error: new WhaleError('ERR_TIMEOUT', `model '${model}' did not finish a batch within ${timeoutMs} ms`, {
          retriable: true,
        }),
      });
    }, timeoutMs);
  }
  new Promise<unknown[]>((resolve) => resolve(executor(model, inputs))).then(
    (results) => {
      if (Array.isArray(results) && results.length === inputs.length) return settle({ kind: 'results', results });
      const got = Array.isArray(results) ? `${results.length} results` : typeof results;
      settle({
        kind: 'failed',
        error: new WhaleError(
          'ERR_EXECUTION_FAILED',
          `model '${model}': the executor returned ${got} for ${inputs.length} inputs`,
        ),
      });
    },
    (err: unknown) => {
      const error = isWhaleError(err)
        ? err
        : new WhaleError(
            'ERR_EXECUTION_FAILED',
            `model '${model}' failed a batch: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
      settle({ kind: 'failed', error });
    },
  );
}
