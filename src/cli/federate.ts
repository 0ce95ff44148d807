/** `whale federate`: federated MNIST training as in McMahan et al. 2017, one line per round. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { env } from '../common/env.js';
import { WhaleError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MNIST_MIN_CLIENTS, runMnistFederation, type MnistFederationOptions } from '../apps/mnist/mnist-federation.js';
import { selectionSize } from '../core/federation/orchestration/client-selector.js';
import type { RoundResult } from '../core/federation/orchestration/round-result.js';
import type { CliIO } from './main.js';
import { defenseFromArgs, DEFENSE_ARGS, DEFENSE_USAGE, defenseLine } from './defense.js';
import { federateConfigCommand } from './federate-config.js';

export const FEDERATE_USAGE = `Usage: whale federate --config federation.json [--json] [--out FILE]
       whale federate --model 2nn|cnn --partition iid|noniid [options]

  --config FILE      federate your own model: model (tfjs model.json, a module exporting a Trainer,
                     or a preset), data per learner, rounds, fraction, strategy, uplink, security,
                     DP, all in one file (docs/federated-learning.md, "Federate your own model";
                     sample: examples/federation/federation.json). Learners run in this process,
                     in one child process each over Kafka ("run": "processes", needs KAFKA_BROKERS),
                     or elsewhere ("run": "external": whale learner --config)

MNIST presets:

  --clients N        clients (data shards) in all (default 100)
  --fraction C       fraction selected per round (default 0.1)
  --epochs E         local epochs (default 1)
  --batch B          local batch size, or 'inf' for the whole shard (default 10)
  --lr LR            client learning rate (default 0.1)
  --rounds R         rounds at most (default 10)
  --target A         stop at this test accuracy, e.g. 0.97
  --processes K      learners in K child processes over Kafka (needs KAFKA_BROKERS); default: in this process
  --strategy S       fedavg | median | trimmed-mean | krum | multi-krum (default fedavg)
  --byzantine F      krum, multi-krum: Byzantine clients tolerated per round (default 0;
                     a round needs 2F + 3 updates; multi-krum averages the n - F best)
  --trim B           trimmed-mean: fraction cut at each end per coordinate (default 0.1)
  --uplink U         f32 | int8 | fp16 | topk (default f32); --topk-ratio R with topk
  --mu M             FedProx proximal term (default 0)
  --lr-decay D       client learning-rate decay per round (default 1)
  --seed S           data split, selection and initialisation seed (default 1)
  --train-count N    use only the first N training images (default all 60,000)
  --store-dir DIR    blob store and checkpoint directory (default: a new temporary one, printed
                     at the start, removed at a clean end, kept if the run fails or is killed); a
                     directory with a checkpoint of the same --federation-id resumes from it
  --federation-id ID name of the federation, 1-100 of A-Z a-z 0-9 . _ - (default: derived from
                     the settings and the time)
  --out FILE         write the options, the summary and every round as JSON to FILE
  --json             print each round and the summary as JSON lines on stdout (no progress bar)
${DEFENSE_USAGE}`;

function fmtBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

export function roundLine(r: RoundResult): string {
  const acc = r.testAccuracy === undefined ? '   -   ' : `${(r.testAccuracy * 100).toFixed(2)}%`;
  const loss = r.testLoss === undefined ? '-' : r.testLoss.toFixed(4);
  const lost = r.missing.length + r.failed.length > 0 ? `  missing ${r.missing.length} failed ${r.failed.length}` : '';
  return `round ${String(r.round).padStart(4)}  selected ${String(r.selected).padStart(3)}  received ${String(r.received).padStart(3)}  test acc ${acc}  loss ${loss}  up ${fmtBytes(r.bytesUp)}  down ${fmtBytes(r.bytesDown)}  ${r.seconds.toFixed(2)} s${lost}${defenseLine(r.security)}`;
}

export function parseFederateArgs(argv: string[]): MnistFederationOptions & { out?: string; json?: boolean } {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: '2nn' },
      partition: { type: 'string', default: 'iid' },
      clients: { type: 'string', default: '100' },
      fraction: { type: 'string', default: '0.1' },
      epochs: { type: 'string', default: '1' },
      batch: { type: 'string', default: '10' },
      lr: { type: 'string', default: '0.1' },
      rounds: { type: 'string', default: '10' },
      target: { type: 'string' },
      processes: { type: 'string', default: '0' },
      strategy: { type: 'string', default: 'fedavg' },
      byzantine: { type: 'string' },
      trim: { type: 'string' },
      uplink: { type: 'string', default: 'f32' },
      'topk-ratio': { type: 'string' },
      mu: { type: 'string' },
      'lr-decay': { type: 'string' },
      seed: { type: 'string', default: '1' },
      'train-count': { type: 'string' },
      'store-dir': { type: 'string' },
      'federation-id': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      ...DEFENSE_ARGS,
    },
  });
  const num = (name: string, s: string, ok: (n: number) => boolean, what: string): number => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n) || !ok(n))
      throw new WhaleError('ERR_CONFIG', `--${name}: expected ${what}, got '${s}'`, { field: name });
    return n;
  };
  const int = (name: string, s: string, min: number) =>
    num(name, s, (n) => Number.isInteger(n) && n >= min, `an integer >= ${min}`);
  const oneOf = <T extends string>(name: string, s: string, options: readonly T[]): T => {
    if (!options.includes(s as T))
      throw new WhaleError('ERR_CONFIG', `--${name}: one of ${options.join(', ')}, got '${s}'`, { field: name });
    return s as T;
  };
  const clients = int('clients', v.clients!, 1);
  const fraction = num('fraction', v.fraction!, (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = int('seed', v.seed!, 0);
  const strategy = oneOf('strategy', v.strategy!, ['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum'] as const);
  const byzantine = v.byzantine === undefined ? undefined : int('byzantine', v.byzantine, 0);
  if (byzantine !== undefined && (strategy === 'krum' || strategy === 'multi-krum')) {
    const perRound = selectionSize(clients, fraction, MNIST_MIN_CLIENTS);
    if (perRound < 2 * byzantine + 3) {
      throw new WhaleError(
        'ERR_CONFIG',
        `--byzantine: ${strategy} with F = ${byzantine} needs 2F + 3 = ${2 * byzantine + 3} updates per round; --fraction x --clients selects ${perRound}`,
        { field: 'byzantine' },
      );
    }
  }
  return {
    model: oneOf('model', v.model!, ['2nn', 'cnn'] as const),
    partition: oneOf('partition', v.partition!, ['iid', 'noniid'] as const),
    clients,
    fraction,
    epochs: int('epochs', v.epochs!, 1),
    batch: v.batch === 'inf' || v.batch === 'Infinity' ? 0 : int('batch', v.batch!, 1),
    lr: num('lr', v.lr!, (n) => n > 0, 'a number > 0'),
    rounds: int('rounds', v.rounds!, 1),
    ...(v.target === undefined
      ? {}
      : { target: num('target', v.target, (n) => n > 0 && n <= 1, 'an accuracy in (0, 1]') }),
    processes: int('processes', v.processes!, 0),
    strategy,
    ...(byzantine === undefined ? {} : { byzantine }),
    ...(v.trim === undefined ? {} : { trim: num('trim', v.trim, (n) => n >= 0 && n < 0.5, 'a fraction in [0, 0.5)') }),
    uplink: oneOf('uplink', v.uplink!, ['f32', 'int8', 'fp16', 'topk'] as const),
    ...(v['topk-ratio'] === undefined
      ? {}
      : { topkRatio: num('topk-ratio', v['topk-ratio'], (n) => n > 0 && n <= 1, 'a number in (0, 1]') }),
    ...(v.mu === undefined ? {} : { mu: num('mu', v.mu, (n) => n >= 0, 'a number >= 0') }),
    ...(v['lr-decay'] === undefined
      ? {}
      : { clientLrDecay: num('lr-decay', v['lr-decay'], (n) => n > 0, 'a number > 0') }),
    seed,
    ...(v['train-count'] === undefined ? {} : { trainCount: int('train-count', v['train-count'], 1) }),
    ...(v['store-dir'] === undefined ? {} : { storeDir: v['store-dir'] }),
    ...(v['federation-id'] === undefined ? {} : { federationId: federationIdArg(v['federation-id']) }),
    ...(v.out === undefined ? {} : { out: v.out }),
    ...(v.json ? { json: true } : {}),
    ...defenseFromArgs(v, { clients, fraction, strategy, seed }),
  };
}

/** The coordinator's rule for a federation id (it names topics' keys, groups and store keys): a usage error, exit 2. */
function federationIdArg(s: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(s))
    throw new WhaleError('ERR_CONFIG', `--federation-id: 1-100 of the characters A-Z a-z 0-9 . _ -, got '${s}'`, {
      field: 'federation-id',
    });
  return s;
}

export async function federateCommand(
  argv: string[],
  io: CliIO,
  isTTY = process.stdout.isTTY === true,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(FEDERATE_USAGE);
    return 0;
  }
  if (argv.includes('--config')) return federateConfigCommand(argv, io, isTTY);
  let opts;
  try {
    opts = parseFederateArgs(argv);
  } catch (err) {
    io.err(`whale federate: ${(err as Error).message}\n\n${FEDERATE_USAGE}`);
    return 2;
  }
  const { out, json, ...o } = opts;
  if (json) isTTY = false; // JSON lines only: no progress bar, no escape codes
  const bar = (done: number): string => {
    const width = 30;
    const filled = Math.round((done / o.rounds) * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${o.rounds}`;
  };
  if (!json)
    io.out(
      `federate: ${o.model} ${o.partition}, ${o.clients} clients, C=${o.fraction}, E=${o.epochs}, B=${o.batch === 0 ? '∞' : o.batch}, lr=${o.lr}, ${o.rounds} rounds${o.target ? `, target ${o.target}` : ''}, learners ${o.processes ? `in ${o.processes} processes (Kafka)` : 'in this process'}\n`,
    );
  let plan: { federationId: string; storeDir: string; temporary: boolean } | undefined;
  const resumeHint = (p: NonNullable<typeof plan>) =>
    `whale federate ${argv.filter((a, i) => !['--store-dir', '--federation-id'].includes(a) && !['--store-dir', '--federation-id'].includes(argv[i - 1]!)).join(' ')} --store-dir ${p.storeDir} --federation-id ${p.federationId}`.replace(
      / +/g,
      ' ',
    );
  const runOpts = {
    ...o,
    onPlan: (p: NonNullable<typeof plan>) => {
      plan = p;
      // Without --store-dir the checkpoint lives in a temporary directory: say where, so a killed run can be resumed.
      const line = `federate: federation ${p.federationId}, checkpoints in ${p.storeDir}${p.temporary ? ' (temporary: removed at a clean end, kept if the run fails or is killed)' : ''}\n`;
      if (json) io.err(line);
      else io.out(line);
    },
    logger: createLogger('federate', env.logLevel ?? 'warn'),
    onRound: (r: RoundResult) =>
      io.out(
        json
          ? `${JSON.stringify({ round: r })}\n`
          : `${isTTY ? '\x1b[2K' : ''}${roundLine(r)}\n${isTTY ? `${bar(r.round)}\r` : ''}`,
      ),
    onLearnerExit: (id: string, code: number | null, signal: string | null) => {
      if (code !== 0) io.err(`learner ${id} exited (code ${code}, signal ${signal})\n`);
    },
  };
  if (isTTY) io.out(`${bar(0)}\r`);
  let result;
  try {
    result = await runMnistFederation(runOpts);
  } catch (err) {
    if (plan?.temporary)
      io.err(
        `${isTTY ? '\x1b[2K' : ''}federate: the completed rounds are kept in ${plan.storeDir}; resume with: ${resumeHint(plan)}\n`,
      );
    throw err;
  }
  const best = result.bestAccuracy === undefined ? '-' : `${(result.bestAccuracy * 100).toFixed(2)}%`;
  const toTarget =
    o.target === undefined
      ? ''
      : `  rounds to ${(o.target * 100).toFixed(1)}%: ${result.roundsToTarget ?? `not reached in ${result.completedRounds}`}`;
  const rejected = Object.entries(result.rejected)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  if (json) io.out(`${JSON.stringify({ summary: { options: o, ...result, rounds: undefined } })}\n`);
  else
    io.out(
      `${isTTY ? '\x1b[2K' : ''}summary: ${result.completedRounds} rounds${result.resumedFrom ? ` (resumed after round ${result.resumedFrom})` : ''}, best test accuracy ${best}${toTarget}, wall ${result.wallSeconds.toFixed(1)} s, ${result.params} parameters on ${result.backend}${rejected ? `, rejected updates: ${rejected}` : ''}\n`,
    );
  if (out) writeFileSync(out, JSON.stringify({ options: o, ...result }, null, 2));
  return 0;
}
