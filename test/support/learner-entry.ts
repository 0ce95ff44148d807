/** A learner process started from source (vite-node) by test/federation.e2e.test.ts; `whale learner` runs the same code through src/cli/learner.ts. */
import { isWhaleError } from '../../src/common/errors.js';
import { parseLearnerArgs, runLearnerProcess } from '../../src/apps/mnist/learner-process.js';

try {
  process.exitCode = await runLearnerProcess(parseLearnerArgs(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`whale learner: ${(err as Error).message}${isWhaleError(err) ? ` [${err.code}]` : ''}\n`);
  process.exitCode = isWhaleError(err, 'ERR_CONFIG') ? 2 : 1;
}
// A handle some library left open must not keep a finished learner alive.
setTimeout(() => process.exit(), 3000).unref();
