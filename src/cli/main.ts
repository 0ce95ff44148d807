/** The `whale` command. Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { isWhaleError } from '../common/errors.js';

const USAGE = `Usage: whale <command> [options]

Commands:
  info        Show the version, the native build and the devices found
  start       Serve the models (HTTP V2 protocol + bus) and run the services until Ctrl-C
  federate    Federated training of your model (--config) or the MNIST presets, one line per round
  learner     One federated-learning client process (--config learner.json, or started by 'federate')
  anomaly     Score timestamp,value CSV files with the streaming anomaly detector
  top         Show a running node's resources live (devices, usage, quotas per model)
  privacy     Epsilon of DP federated training (sampling rate, noise, rounds), or the noise for an epsilon
  keys        Create, list and revoke API keys (hashed in a keys file) for the HTTP routes
  topics      List, describe and create the Kafka topics (partitions, replication, retention from the config)
  help        Show this help, or a command's: whale help <command>

Options:
  -h, --help     Show help
  -v, --version  Print the version

Run 'whale <command> --help' (or 'whale help <command>') for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`;

const INFO_USAGE = `Usage: whale info [--json]

Shows the version, the native build (CPU/CUDA) and the devices found.
  --json   machine-readable output
`;

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIO: CliIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/**
 * A command: its own options (a flag given to another command is refused by this one),
 * how many positionals it takes, its usage text and what it does.
 * Commands that parse their own argv (federate, learner, top, privacy) declare `raw`.
 */
interface Command {
  usage: () => Promise<string>;
  options?: Options;
  maxPositionals?: number;
  /** A failure of this command exits 2 (usage), not 1, whatever its code. */
  failureIsUsage?: boolean;
  run: (args: Parsed & { argv: string[] }, io: CliIO) => Promise<number>;
  raw?: boolean;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

const COMMANDS: Record<string, Command> = {
  info: {
    usage: async () => INFO_USAGE,
    options: { ...HELP, json: { type: 'boolean' } },
    run: async ({ values }, io) => (await import('./info.js')).infoCommand({ json: values.json === true }, io),
  },
  start: {
    usage: async () => (await import('./start.js')).START_USAGE,
    options: { ...HELP, config: { type: 'string' }, port: { type: 'string' }, check: { type: 'boolean' } },
    run: async ({ values }, io) => {
      const { startCommand } = await import('./start.js');
      const portText = values.port as string | undefined;
      let port: number | undefined;
      if (portText !== undefined) {
        port = Number(portText);
        if (!/^\d+$/.test(portText) || port > 65_535) {
          io.err(`whale start: --port must be a port number 0-65535, got '${portText}'\n`);
          return 2;
        }
      }
      const config = values.config as string | undefined;
      return startCommand(io, {
        ...(config === undefined ? {} : { config }),
        ...(port === undefined ? {} : { port }),
        ...(values.check ? { check: true } : {}),
      });
    },
  },
  anomaly: {
    usage: async () => (await import('./anomaly.js')).ANOMALY_USAGE,
    options: {
      ...HELP,
      out: { type: 'string' },
      dir: { type: 'string' },
      'out-dir': { type: 'string' },
      threshold: { type: 'string' },
      detector: { type: 'string' },
      'allow-unordered': { type: 'boolean' },
    },
    maxPositionals: 1,
    run: async ({ values, positionals }, io) => {
      const { anomalyCommand } = await import('./anomaly.js');
      const str = (k: string) => values[k] as string | undefined;
      try {
        return anomalyCommand(
          {
            input: positionals[0],
            out: str('out'),
            dir: str('dir'),
            outDir: str('out-dir'),
            threshold: str('threshold'),
            detector: str('detector'),
            allowUnordered: values['allow-unordered'] === true,
          },
          io.out,
          io.err,
        );
      } catch (err) {
        if (!isWhaleError(err, 'ERR_INVALID_ARG')) throw err;
        io.err(`whale: ${err.message} [${err.code}]\n`);
        return 2;
      }
    },
  },
  federate: {
    raw: true,
    usage: async () => (await import('./federate.js')).FEDERATE_USAGE,
    run: async ({ argv }, io) => (await import('./federate.js')).federateCommand(argv, io),
  },
  learner: {
    raw: true,
    usage: async () => {
      const m = await import('./learner.js');
      return m.LEARNER_CONFIG_USAGE + (await import('../apps/mnist/learner-process.js')).LEARNER_USAGE;
    },
    run: async ({ argv }, io) => (await import('./learner.js')).learnerCommand(argv, io),
  },
  top: {
    raw: true,
    failureIsUsage: true,
    usage: async () => (await import('./top.js')).TOP_USAGE,
    run: async ({ argv }, io) => (await import('./top.js')).topCommand(argv, io),
  },
  keys: {
    raw: true,
    failureIsUsage: true,
    usage: async () => (await import('./keys.js')).KEYS_USAGE,
    run: async ({ argv }, io) => (await import('./keys.js')).keysCommand(argv, io),
  },
  topics: {
    raw: true,
    usage: async () => (await import('./topics.js')).TOPICS_USAGE,
    run: async ({ argv }, io) => (await import('./topics.js')).topicsCommand(argv, io),
  },
  privacy: {
    raw: true,
    failureIsUsage: true,
    usage: async () => (await import('./privacy.js')).PRIVACY_USAGE,
    run: async ({ argv }, io) => (await import('./privacy.js')).privacyCommand(argv, io),
  },
};

export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.out(USAGE);
    return 0;
  }
  if (first.startsWith('-')) return topLevelFlags(argv, io);
  if (first === 'help') return helpCommand(rest, io);
  const command = COMMANDS[first];
  if (!command) {
    io.err(`whale: unknown command '${first}'\n\n${USAGE}`);
    return 2;
  }
  return runCommand(first, command, rest, io);
}

/** Only --help and --version stand before a command; anything else is a usage error. */
function topLevelFlags(argv: string[], io: CliIO): number | Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...HELP, version: { type: 'boolean', short: 'v' } }, strict: true });
  } catch (err) {
    io.err(`whale: ${(err as Error).message} (options of a command go after it: whale <command> --help)\n`);
    return 2;
  }
  if (parsed.values.version) {
    return import('./info.js').then(({ packageVersion }) => {
      io.out(`${packageVersion()}\n`);
      return 0;
    });
  }
  io.out(USAGE);
  return 0;
}

async function helpCommand(args: string[], io: CliIO): Promise<number> {
  if (args.length === 0) {
    io.out(USAGE);
    return 0;
  }
  const command = args.length === 1 ? COMMANDS[args[0]!] : undefined;
  if (!command) {
    io.err(`whale help: ${args.length === 1 ? `unknown command '${args[0]}'` : 'give one command'}\n\n${USAGE}`);
    return 2;
  }
  io.out(await command.usage());
  return 0;
}

async function runCommand(name: string, command: Command, argv: string[], io: CliIO): Promise<number> {
  try {
    if (command.raw) return await command.run({ argv, values: {}, positionals: [] }, io);
    let parsed: Parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: command.options ?? HELP,
        allowPositionals: true,
        strict: true,
      }) as Parsed;
    } catch (err) {
      io.err(`whale ${name}: ${(err as Error).message}\n\n${await command.usage()}`);
      return 2;
    }
    if (parsed.values.help) {
      io.out(await command.usage());
      return 0;
    }
    const max = command.maxPositionals ?? 0;
    if (parsed.positionals.length > max) {
      io.err(`whale ${name}: unexpected argument '${parsed.positionals[max]}'\n\n${await command.usage()}`);
      return 2;
    }
    return await command.run({ ...parsed, argv }, io);
  } catch (err) {
    const code = isWhaleError(err) ? ` [${err.code}]` : '';
    // `whale: <message> [CODE]` (docs/cli.md); the commands that parse their own argv name themselves.
    io.err(`whale${command.raw ? ` ${name}` : ''}: ${(err as Error)?.message ?? String(err)}${code}\n`);
    return command.failureIsUsage || isWhaleError(err, 'ERR_CONFIG') ? 2 : 1;
  }
}
