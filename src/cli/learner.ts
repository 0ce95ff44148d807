/** `whale learner`: one federated-learning client process (see LEARNER_USAGE). */
import { LEARNER_USAGE, parseLearnerArgs, runLearnerProcess } from '../apps/mnist/learner-process.js';
import type { CliIO } from './main.js';

export async function learnerCommand(argv: string[], io: CliIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(LEARNER_USAGE);
    return 0;
  }
  return runLearnerProcess(parseLearnerArgs(argv));
}
