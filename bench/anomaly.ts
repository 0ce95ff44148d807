/**
 * Anomaly detector: NAB scores on the dev files (the published detectors' scores on the same
 * files beside ours) and throughput, native batched vs the TS reference.
 * NAB data: $WHALE_NAB_DIR, else ../shared/data/nab-dev; scorer: ../shared/tools/nab-score.mjs.
 */
import { AnomalyDetector, AnomalyDetectorBank } from '../src/core/monitoring/health/anomaly-detector.js';
import { ReferenceAnomalyDetector } from '../src/core/monitoring/health/anomaly-detector-reference.js';
import { engine } from '../src/native/engine.js';
import { leaveOneCategoryOut, nabRoot, nabScore, PROFILES, readNab, scoreAll } from './anomaly-nab.js';
import { fmt, table, timeRuns } from './stats.js';

/** Published standard-profile scores on these 18 files (issue 11). */
const PUBLISHED_DEV: Array<[string, number]> = [
  ['ARTime', 67.1],
  ['Numenta HTM', 61.3],
  ['Windowed Gaussian', 12.1],
];

/** Median wall time and median process CPU time (user + system) of `runs` calls, after one warm-up call. */
async function timeBoth(runs: number, fn: () => unknown): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu: number[] = [];
  const wall = await timeRuns(runs, () => {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  });
  cpu.shift(); // the warm-up call
  cpu.sort((a, b) => a - b);
  return { wallMs: wall.medianMs, cpuMs: cpu[Math.floor(cpu.length / 2)]! };
}

export async function benchAnomaly(o: { runs: number; quick: boolean }): Promise<{ text: string; nab: Record<string, number>; throughput: unknown[] }> {
  const root = nabRoot();
  const files = readNab(root);
  const scored = nabScore(root, files, scoreAll(files));
  const nab = Object.fromEntries(PROFILES.map((p) => [p, scored[p]!.score]));
  const nabTable = table(
    ['detector', 'standard', 'reward low FP', 'reward low FN'],
    [
      ['whale AnomalyDetector (defaults)', ...PROFILES.map((p) => fmt(nab[p], 1))],
      ...PUBLISHED_DEV.map(([name, s]) => [`${name} (published)`, fmt(s, 1), '—', '—']),
    ],
  );

  // Throughput on the NAB values, concatenated and repeated.
  const all = Float64Array.from(files.flatMap((f) => Array.from(f.values)));
  const reps = o.quick ? 2 : 8;
  const stream = new Float64Array(all.length * reps);
  for (let r = 0; r < reps; r++) stream.set(all, r * all.length);
  const rows: Array<{ case: string; points: number; medianMs: number; pointsPerSec: number; perCore: number; perCpuSecond: number }> = [];
  // Wall time per core, and points per CPU-second of this process (user + system, all threads): the
  // second is the per-core figure that stays meaningful when other work shares the cores.
  const add = (name: string, points: number, ms: number, cores: number, cpuMs: number) =>
    rows.push({ case: name, points, medianMs: ms, pointsPerSec: points / (ms / 1e3), perCore: points / (ms / 1e3) / cores, perCpuSecond: points / (cpuMs / 1e3) });

  const single = await timeBoth(o.runs, () => new AnomalyDetector().updateBatch(stream));
  add('native, 1 series, updateBatch', stream.length, single.wallMs, 1, single.cpuMs);
  const one = new AnomalyDetector();
  const perPoint = await timeBoth(o.runs, () => { for (let i = 0; i < all.length; i++) one.update(all[i]!); });
  add('native, 1 series, update() per point', all.length, perPoint.wallMs, 1, perPoint.cpuMs);
  const refPoints = all.length;
  const ref = await timeBoth(Math.min(o.runs, 3), () => { const r = new ReferenceAnomalyDetector(); for (let i = 0; i < refPoints; i++) r.update(all[i]!); });
  add('TS reference, 1 series', refPoints, ref.wallMs, 1, ref.cpuMs);

  const threads = engine.build().threads;
  const seriesCount = 256;
  const perSeries = o.quick ? 2000 : 8000;
  const names = Array.from({ length: seriesCount }, (_, s) => `s${s}`);
  const series: string[] = [];
  const values = new Float64Array(seriesCount * perSeries);
  for (let i = 0; i < perSeries; i++) for (let s = 0; s < seriesCount; s++) { series.push(names[s]!); values[i * seriesCount + s] = all[(s * 997 + i) % all.length]!; }
  const many = await timeBoth(o.runs, () => new AnomalyDetectorBank().updateMany(series, values));
  add(`native, ${seriesCount} series, updateMany (${threads} threads)`, values.length, many.wallMs, threads, many.cpuMs);

  const tput = table(
    ['case', 'points', 'median ms', 'points/s', 'points/s per core', 'points per CPU-second'],
    rows.map((r) => [r.case, String(r.points), fmt(r.medianMs), (r.pointsPerSec / 1e6).toFixed(2) + ' M', (r.perCore / 1e6).toFixed(2) + ' M', (r.perCpuSecond / 1e6).toFixed(2) + ' M']),
  );
  const loco = o.quick ? '' : `${leaveOneCategoryOut(root, files)}\n\n`;
  const text = `NAB dev files (${files.length} series; scorer ${'../shared/tools/nab-score.mjs'}; best threshold ${fmt(scored.standard!.threshold, 3)})\n${nabTable}\n\n${loco}Throughput (median of ${o.runs} runs)\n${tput}\n` +
    `State per series: ${new AnomalyDetector().stateBytes()} bytes`;
  return { text, nab, throughput: rows };
}
