/** npm run bench -- <suite> [--runs N] [--quick] [--json FILE] */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';

import { engine } from '../src/native/engine.js';
import { benchAggregate } from './aggregate.js';
import { benchBus } from './bus.js';
import { benchCache } from './cache.js';
import { benchQuant } from './quant.js';
import { benchServe } from './serve.js';

const SUITES = ['aggregate', 'quant', 'cache', 'bus', 'serve'] as const;
const USAGE = `Usage: npm run bench -- <suite> [--runs N] [--quick] [--json FILE]\nSuites: ${SUITES.join(', ')}\n`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        runs: { type: 'string', default: '5' },
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        'reference-limit': { type: 'string', default: '1e8' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const suite = positionals[0];
  const runs = Number(values.runs);
  if (!SUITES.includes(suite as (typeof SUITES)[number]) || !(Number.isInteger(runs) && runs >= 1)) {
    process.stderr.write(`bench: ${suite === undefined ? 'no suite given' : `bad suite '${suite}' or --runs`}\n${USAGE}`);
    return 2;
  }
  const build = engine.build();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const gpus = engine.devices().devices.filter((d) => d.kind === 'cuda').map((d) => d.name);
  process.stdout.write(`machine: ${cpu}, ${build.threads} threads, SIMD ${build.simd}; GPU: ${gpus.join(', ') || 'none'}\n`);
  const res: { text: string } =
    suite === 'aggregate'
      ? await benchAggregate({ runs, quick: values.quick, referenceLimit: Number(values['reference-limit']) })
      : suite === 'quant'
        ? await benchQuant({ runs, quick: values.quick })
        : suite === 'cache'
          ? await benchCache({ quick: values.quick })
          : suite === 'serve'
            ? await benchServe({ runs, quick: values.quick })
            : await benchBus({ runs, quick: values.quick });
  process.stdout.write(`\n${res.text}\n`);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ suite, date: new Date().toISOString(), cpu, gpus, build, ...res, text: undefined }, null, 2));
  }
  return 0;
}

process.exitCode = await main();
