/**
 * Monitoring bench: the cost of metric recording on the request path, in ns
 * per observation (median of runs), for
 *  - prom-client used plainly (labels object per call: counter inc + histogram observe),
 *  - WhaleMetrics.observeRequest (bound children, what the server does),
 *  - Monitor.recordRequest (observeRequest + the dashboard's interval window: the whole pipeline observer).
 */
import { Counter, Histogram, Registry } from 'prom-client';

import { silentLogger } from '../src/common/logger.js';
import { Monitor } from '../src/core/monitoring/monitor.js';
import { WhaleMetrics } from '../src/core/monitoring/metrics/whale-metrics.js';
import type { RequestObservation } from '../src/core/processing/processing-pipeline.js';
import { fmt, median, table } from './stats.js';

const MODELS = ['mnist', 'resnet', 'bert'];
const LEVELS = ['quick', 'normal', 'deep'] as const;

function nsPerOp(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // warm-up (JIT, label children)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

export async function benchMonitoring(o: {
  runs: number;
  quick: boolean;
}): Promise<{ text: string; results: Record<string, number> }> {
  const n = o.quick ? 200_000 : 1_000_000;
  const latency = (i: number) => 0.0005 + (i % 997) * 1e-5;
  let sink = 0;
  const cases: [string, () => (i: number) => void][] = [
    ['calibration: Math.sqrt add (machine speed, not recording)', () => (i) => void (sink += Math.sqrt(i))],
    [
      'prom-client, labels object per call',
      () => {
        const registers = [new Registry()];
        const c = new Counter({
          name: 'c_total',
          help: 'h',
          labelNames: ['model', 'version', 'level', 'outcome'],
          registers,
        });
        const h = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['model', 'version', 'level'], registers });
        return (i) => {
          const labels = { model: MODELS[i % 3]!, version: '1', level: LEVELS[i % 3]! };
          c.inc({ ...labels, outcome: 'ok' });
          h.observe(labels, latency(i));
        };
      },
    ],
    [
      'WhaleMetrics.observeRequest',
      () => {
        const m = new WhaleMetrics({ processMetrics: false });
        return (i) => m.observeRequest(MODELS[i % 3]!, '1', LEVELS[i % 3]!, latency(i));
      },
    ],
    [
      'Monitor.recordRequest (pipeline observer)',
      () => {
        const mon = new Monitor({
          metrics: new WhaleMetrics({ processMetrics: false }),
          source: {},
          logger: silentLogger,
        });
        const obs: RequestObservation[] = MODELS.map((model, k) => ({
          model,
          version: '1',
          level: LEVELS[k]!,
          seconds: 0,
          ok: true,
          cached: false,
        }));
        return (i) => {
          const r = obs[i % 3]!;
          r.seconds = latency(i);
          mon.recordRequest(r);
        };
      },
    ],
  ];
  const rows: string[][] = [];
  const results: Record<string, number> = {};
  for (const [name, make] of cases) {
    const ns: number[] = [];
    for (let r = 0; r < o.runs; r++) ns.push(nsPerOp(n, make()));
    results[name] = median(ns);
    rows.push([name, fmt(median(ns), 1), `${fmt(Math.min(...ns), 1)}–${fmt(Math.max(...ns), 1)}`]);
  }
  const text = `Metric recording on the request path (${n.toLocaleString('en')} observations per run, ${o.runs} runs, 3 models × 3 levels)\n\n${table(['recording', 'ns/observation (median)', 'range'], rows)}`;
  if (sink < 0) process.stdout.write(''); // keeps the calibration loop from being optimised away
  return { text, results };
}
