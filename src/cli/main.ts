/** The `whale` command. Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
import { parseArgs } from 'node:util';

import { isWhaleError } from '../core/base/errors.js';
import { infoCommand } from './info.js';

const USAGE = `Usage: whale <command> [options]

Commands:
  info        Show the version, the native build and the devices found
  start       Serve the models (HTTP V2 protocol + bus) and run the services until Ctrl-C
  federate    Federated training on MNIST (coordinator + learners), one line per round
  learner     One federated-learning client process (started by 'federate --processes K')
  anomaly     Score timestamp,value CSV files with the streaming anomaly detector
  top         Show a running node's resources live (devices, usage, quotas per model)
  privacy     Epsilon of DP federated training (sampling rate, noise, rounds), or the noise for an epsilon
  help        Show this help

Options:
  -h, --help     Show help
  -v, --version  Print the version
  --json         Machine-readable output (info)

Run 'whale <command> --help' for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`;

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIO: CliIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  // Commands with their own options parse them themselves.
  if (argv[0] === 'federate' || argv[0] === 'learner') return subcommand(argv[0], argv.slice(1), io);
  if (argv[0] === 'top') return topSubcommand(argv.slice(1), io);
  if (argv[0] === 'privacy') return privacySubcommand(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        json: { type: 'boolean' },
        config: { type: 'string' },
        port: { type: 'string' },
        out: { type: 'string' },
        dir: { type: 'string' },
        'out-dir': { type: 'string' },
        threshold: { type: 'string' },
        'allow-unordered': { type: 'boolean' },
      },
    });
  } catch (err) {
    io.err(`whale: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? (values.version ? 'version' : 'help');
  try {
    switch (command) {
      case 'help':
        io.out(USAGE);
        return 0;
      case 'version': {
        const { packageVersion } = await import('./info.js');
        io.out(`${packageVersion()}\n`);
        return 0;
      }
      case 'start': {
        const { startCommand, START_USAGE } = await import('./start.js');
        if (values.help) {
          io.out(START_USAGE);
          return 0;
        }
        let port: number | undefined;
        if (values.port !== undefined) {
          port = Number(values.port);
          if (!/^\d+$/.test(values.port) || port > 65_535) {
            io.err(`whale: --port must be a port number 0-65535, got '${values.port}'\n`);
            return 2;
          }
        }
        return await startCommand(io, { ...(values.config === undefined ? {} : { config: values.config }), ...(port === undefined ? {} : { port }) });
      }
      case 'anomaly': {
        const { anomalyCommand, ANOMALY_USAGE } = await import('./anomaly.js');
        if (values.help) {
          io.out(ANOMALY_USAGE);
          return 0;
        }
        try {
          return anomalyCommand({ input: positionals[1], out: values.out, dir: values.dir, outDir: values['out-dir'], threshold: values.threshold, allowUnordered: values['allow-unordered'] === true }, io.out, io.err);
        } catch (err) {
          if (!isWhaleError(err, 'ERR_INVALID_ARG')) throw err;
          io.err(`whale: ${err.message} [${err.code}]\n`);
          return 2;
        }
      }
      case 'info':
        if (values.help) {
          io.out('Usage: whale info [--json]\n\nShows the version, the native build (CPU/CUDA) and the devices found.\n');
          return 0;
        }
        return await infoCommand({ json: values.json === true }, io);
      default:
        io.err(`whale: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    const code = isWhaleError(err) ? ` [${err.code}]` : '';
    io.err(`whale: ${(err as Error)?.message ?? String(err)}${code}\n`);
    return isWhaleError(err, 'ERR_CONFIG') ? 2 : 1;
  }
}

async function subcommand(name: 'federate' | 'learner', argv: string[], io: CliIO): Promise<number> {
  try {
    if (name === 'federate') return await (await import('./federate.js')).federateCommand(argv, io);
    return await (await import('./learner.js')).learnerCommand(argv, io);
  } catch (err) {
    const code = isWhaleError(err) ? ` [${err.code}]` : '';
    io.err(`whale ${name}: ${(err as Error)?.message ?? String(err)}${code}\n`);
    return isWhaleError(err, 'ERR_CONFIG') ? 2 : 1;
  }
}

async function topSubcommand(argv: string[], io: CliIO): Promise<number> {
  try {
    return await (await import('./top.js')).topCommand(argv, io);
  } catch (err) {
    const code = isWhaleError(err) ? ` [${err.code}]` : '';
    io.err(`whale top: ${(err as Error)?.message ?? String(err)}${code}\n`);
    return 2;
  }
}

async function privacySubcommand(argv: string[], io: CliIO): Promise<number> {
  try {
    return (await import('./privacy.js')).privacyCommand(argv, io);
  } catch (err) {
    const code = isWhaleError(err) ? ` [${err.code}]` : '';
    io.err(`whale privacy: ${(err as Error)?.message ?? String(err)}${code}\n`);
    return 2;
  }
}
