/** `whale federate --config federation.json`: a federation of the author's model (src/apps/federate). */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { env } from '../common/env.js';
import { WhaleError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { parseFederationConfig, type FederationConfig } from '../apps/federate/config.js';
import { runConfigFederation } from '../apps/federate/run-config.js';
import type { RoundResult } from '../core/federation/orchestration/round-result.js';
import type { CliIO } from './main.js';
import { FEDERATE_USAGE, roundLine } from './federate.js';

export async function federateConfigCommand(argv: string[], io: CliIO, isTTY: boolean): Promise<number> {
  let config: FederationConfig;
  let v: { config?: string; out?: string; json?: boolean };
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } },
    }));
    if (!v.config) throw new WhaleError('ERR_CONFIG', '--config: expected a file', { field: 'config' });
    config = parseFederationConfig(v.config);
  } catch (err) {
    io.err(`whale federate: ${(err as Error).message}\n\n${FEDERATE_USAGE}`);
    return 2;
  }
  const json = v.json === true;
  if (json) isTTY = false;
  const clients = config.learners.reduce((n, l) => n + Object.keys(l.clients).length, 0);
  const model = config.model.kind === 'preset' ? config.model.preset : `${config.model.kind} ${config.model.path}`;
  if (!json)
    io.out(
      `federate: ${config.federationId}: ${model}, ${config.learners.length} learner(s), ${clients} clients, C=${config.fraction}, E=${config.epochs}, B=${config.batchSize === 0 ? '∞' : config.batchSize}, lr=${config.learningRate}, ${config.rounds} rounds, ${config.strategy}, uplink ${config.uplink}\n`,
    );
  const result = await runConfigFederation(config, {
    logger: createLogger('federate', env.logLevel ?? 'warn'),
    onPlan: (p) => {
      const line = `federate: federation ${p.federationId}, checkpoints in ${p.storeDir}${p.temporary ? ' (temporary)' : ''}\n`;
      if (json) io.err(line);
      else io.out(line);
    },
    onRound: (r: RoundResult) =>
      io.out(json ? `${JSON.stringify({ round: r })}\n` : `${isTTY ? '\x1b[2K' : ''}${roundLine(r)}\n`),
    onLearnerExit: (id, code, signal) => {
      if (code !== 0) io.err(`learner ${id} exited (code ${code}, signal ${signal})\n`);
    },
  });
  const best = result.bestAccuracy === undefined ? '-' : `${(result.bestAccuracy * 100).toFixed(2)}%`;
  if (json) io.out(`${JSON.stringify({ summary: { ...result, rounds: undefined } })}\n`);
  else
    io.out(
      `summary: ${result.completedRounds} rounds${result.resumedFrom ? ` (resumed after round ${result.resumedFrom})` : ''}, best test accuracy ${best}, wall ${result.wallSeconds.toFixed(1)} s, ${result.params} parameters on ${result.backend}\n`,
    );
  if (v.out) writeFileSync(v.out, JSON.stringify({ config, ...result }, null, 2));
  return 0;
}
