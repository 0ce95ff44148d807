/** npm run bench -- <suite> [--runs N] [--quick] [--json FILE] */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';

import { engine } from '../src/native/engine.js';
import { benchAggregate } from './aggregate.js';
import { benchAnomaly } from './anomaly.js';
import { benchBus } from './bus.js';
import { benchCache } from './cache.js';
import { benchFederated } from './federation.js';
import { benchFederationGeneric } from './federation-generic.js';
import { benchFederationSecurity } from './federation-security.js';
import { benchHttp } from './http.js';
import { benchKnowledge } from './knowledge.js';
import { benchMonitoring } from './monitoring.js';
import { benchProtocols } from './protocols.js';
import { benchQuant } from './quant.js';
import { ROUTING_PLOT } from './quality.js';
import { benchRoutingSuite } from './routing-real.js';
import { benchResources } from './resources.js';
import { benchServe } from './serve.js';
import { benchServeE2E } from './serve-e2e.js';
import { benchSoak } from './soak.js';

const SUITES = [
  'aggregate',
  'quant',
  'cache',
  'bus',
  'serve',
  'anomaly',
  'resources',
  'routing',
  'federated',
  'knowledge',
  'monitoring',
  'federation-security',
  'federation-generic',
  'soak',
  'protocols',
  'http',
] as const;
const USAGE = `Usage: npm run bench -- <suite> [--runs N] [--quick] [--json FILE]\n       npm run bench -- soak [--minutes N] [--concurrency C]\n       npm run bench -- http [--runs N] [--seconds S] [--concurrency 1,8,64] [--profile DIR] [--whale-config JSON] [--baseline DIR] [--targets whale-json,whale-binary,base-json,base-binary,plain,fixed]\n       npm run bench -- federation-generic [--runs N] [--max-rounds R] [--quick]\nSuites: ${SUITES.join(', ')}\n`;

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
        rows: { type: 'string' },
        'max-rounds': { type: 'string' },
        partitions: { type: 'string' },
        seconds: { type: 'string' },
        minutes: { type: 'string', default: '10' },
        concurrency: { type: 'string' },
        profile: { type: 'string' },
        'whale-config': { type: 'string' },
        baseline: { type: 'string' },
        targets: { type: 'string' },
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
    process.stderr.write(
      `bench: ${suite === undefined ? 'no suite given' : `bad suite '${suite}' or --runs`}\n${USAGE}`,
    );
    return 2;
  }
  const build = engine.build();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const gpus = engine
    .devices()
    .devices.filter((d) => d.kind === 'cuda')
    .map((d) => d.name);
  process.stdout.write(
    `machine: ${cpu}, ${build.threads} threads, SIMD ${build.simd}; GPU: ${gpus.join(', ') || 'none'}\n`,
  );
  const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').filter(Boolean));
  if (suite === 'soak') {
    const minutes = Number(values.minutes);
    const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
    if (!(minutes > 0) || (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1))) {
      process.stderr.write(`bench: --minutes must be > 0 and --concurrency an integer >= 1\n${USAGE}`);
      return 2;
    }
    const soak = await benchSoak({ minutes, ...(concurrency === undefined ? {} : { concurrency }) });
    process.stdout.write(`\n${soak.text}\n`);
    if (values.json)
      writeFileSync(
        values.json,
        JSON.stringify({ suite, date: new Date().toISOString(), cpu, ...soak, text: undefined }, null, 2),
      );
    return soak.ok ? 0 : 1;
  }
  const res: { text: string } =
    suite === 'http'
      ? await benchHttp({
          runs,
          quick: values.quick,
          ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
          ...(values.profile ? { profile: values.profile } : {}),
          ...(list(values.targets) ? { targets: list(values.targets)! } : {}),
          ...(values['whale-config']
            ? { whaleConfig: JSON.parse(values['whale-config']) as Record<string, unknown> }
            : {}),
          ...(list(values.concurrency) ? { concurrency: list(values.concurrency)!.map(Number) } : {}),
          ...(values.baseline ? { baseline: values.baseline } : {}),
        })
      : suite === 'protocols'
        ? await benchProtocols({ quick: values.quick, ...(values.seconds ? { seconds: Number(values.seconds) } : {}) })
        : suite === 'federation-generic'
          ? await benchFederationGeneric({
              runs,
              quick: values.quick,
              ...(values['max-rounds'] ? { rounds: Number(values['max-rounds']) } : {}),
            })
          : suite === 'federation-security'
            ? await benchFederationSecurity({
                quick: values.quick,
                ...(list(values.rows) ? { parts: list(values.rows) } : {}),
              })
            : suite === 'monitoring'
              ? await benchMonitoring({ runs, quick: values.quick })
              : suite === 'knowledge'
                ? await benchKnowledge({ runs, quick: values.quick })
                : suite === 'federated'
                  ? await benchFederated({
                      quick: values.quick,
                      ...(list(values.rows) ? { rows: list(values.rows) } : {}),
                      ...(values['max-rounds'] ? { maxRounds: Number(values['max-rounds']) } : {}),
                      ...(list(values.partitions)
                        ? { partitions: list(values.partitions) as Array<'iid' | 'noniid'> }
                        : {}),
                    })
                  : suite === 'routing'
                    ? await benchRoutingSuite({
                        runs,
                        quick: values.quick,
                        plot: ROUTING_PLOT,
                        ...(list(values.rows) ? { parts: list(values.rows) } : {}),
                      })
                    : suite === 'resources'
                      ? await benchResources({ runs, quick: values.quick })
                      : suite === 'anomaly'
                        ? await benchAnomaly({
                            runs,
                            quick: values.quick,
                            ...(list(values.rows) ? { parts: list(values.rows) } : {}),
                          })
                        : suite === 'aggregate'
                          ? await benchAggregate({
                              runs,
                              quick: values.quick,
                              referenceLimit: Number(values['reference-limit']),
                            })
                          : suite === 'quant'
                            ? await benchQuant({ runs, quick: values.quick })
                            : suite === 'cache'
                              ? await benchCache({ quick: values.quick })
                              : suite === 'serve'
                                ? await benchServeAll({ runs, quick: values.quick })
                                : await benchBus({ runs, quick: values.quick });
  process.stdout.write(`\n${res.text}\n`);
  if (values.json) {
    writeFileSync(
      values.json,
      JSON.stringify({ suite, date: new Date().toISOString(), cpu, gpus, build, ...res, text: undefined }, null, 2),
    );
  }
  return 0;
}

/** The scheduler cases, then end-to-end inference on the shipped model. */
async function benchServeAll(o: {
  runs: number;
  quick: boolean;
}): Promise<{ text: string; cases: unknown[]; endToEnd: unknown[] }> {
  const scheduler = await benchServe(o);
  const e2e = await benchServeE2E(o);
  return { text: `${scheduler.text}\n\n${e2e.text}`, cases: scheduler.cases, endToEnd: e2e.rows };
}

process.exitCode = await main();
