/** A `whale learner --config …` process started from source (vite-node) by test/federation.custom-model.test.ts. */
import { isWhaleError } from '../../src/common/errors.js';
import { learnerCommand } from '../../src/cli/learner.js';

try {
  process.exitCode = await learnerCommand(process.argv.slice(2), {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
  });
} catch (err) {
  process.stderr.write(`whale learner: ${(err as Error).message}${isWhaleError(err) ? ` [${err.code}]` : ''}\n`);
  process.exitCode = isWhaleError(err, 'ERR_CONFIG') ? 2 : 1;
}
// A handle some library left open must not keep a finished learner alive.
setTimeout(() => process.exit(), 3000).unref();
