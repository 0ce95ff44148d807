/** `whale learner`: one federated-learning client process (see LEARNER_USAGE). */
import { parseArgs } from 'node:util';

import { readEnv } from '../common/env.js';
import { WhaleError } from '../common/errors.js';
import { isFederationConfig, learnerOf, parseFederationConfig, parseLearnerConfig } from '../apps/federate/config.js';
import { runConfigLearner } from '../apps/federate/run-config.js';
import { identityDirSecurity } from '../apps/federate/learner-run.js';
import { LEARNER_USAGE, parseLearnerArgs, runLearnerProcess } from '../apps/mnist/learner-process.js';
import type { CliIO } from './main.js';

export const LEARNER_CONFIG_USAGE = `Usage: whale learner --config learner.json
       whale learner --config federation.json --learner ID [--store-dir DIR]

Hosts the clients a learner config names (model, datasets, blob store: docs/federated-learning.md,
"Federate your own model") and trains them in the federation's rounds. Needs KAFKA_BROKERS.
Options as below: --store-dir, --heartbeat-ms, --give-up-after-ms, --parent-pid, --identity-dir.
Signed messages: learner.json "security": { "keyFile": "<its Ed25519 key, PEM>", "policyFile": "<policy>" }.

`;

function configLearner(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      learner: { type: 'string' },
      'store-dir': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'give-up-after-ms': { type: 'string' },
      'parent-pid': { type: 'string' },
      'identity-dir': { type: 'string' },
    },
  });
  const int = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s))
      throw new WhaleError('ERR_CONFIG', `--${name}: expected a whole number, got '${s}'`, { field: name });
    return Number(s);
  };
  const file = v.config!;
  let config;
  if (isFederationConfig(file)) {
    if (!v.learner)
      throw new WhaleError('ERR_CONFIG', `--learner: ${file} is a federation config; name the learner to run`, {
        field: 'learner',
      });
    config = learnerOf(parseFederationConfig(file), v.learner);
  } else config = parseLearnerConfig(file);
  const brokers = readEnv().kafkaBrokers;
  if (brokers.length === 0)
    throw new WhaleError(
      'ERR_CONFIG',
      'KAFKA_BROKERS is not set: a learner process reaches its coordinator over Kafka',
      {
        field: 'KAFKA_BROKERS',
      },
    );
  const heartbeatMs = int('heartbeat-ms', v['heartbeat-ms']);
  const giveUpAfterMs = int('give-up-after-ms', v['give-up-after-ms']);
  const parentPid = int('parent-pid', v['parent-pid']);
  return runConfigLearner(config, {
    brokers,
    ...(v['store-dir'] ? { storeDir: v['store-dir'] } : {}),
    ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
    ...(giveUpAfterMs === undefined ? {} : { giveUpAfterMs }),
    ...(parentPid === undefined ? {} : { parentPid }),
    ...(v['identity-dir'] ? { security: identityDirSecurity(v['identity-dir'], config.learnerId) } : {}),
  });
}

export async function learnerCommand(argv: string[], io: CliIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(LEARNER_CONFIG_USAGE + LEARNER_USAGE);
    return 0;
  }
  if (argv.includes('--config')) return configLearner(argv);
  return runLearnerProcess(parseLearnerArgs(argv));
}
