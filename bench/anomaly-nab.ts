/**
 * NAB scoring for the anomaly bench: the dev files, the scorer (../shared/tools/nab-score.mjs), and a
 * leave-one-category-out check of a declared option grid (select on two categories, score the third).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { AnomalyDetector, type AnomalyDetectorOptions } from '../src/core/monitoring/health/anomaly-detector.js';
import { table } from './stats.js';

export const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;

export interface NabFile {
  key: string;
  category: string;
  timestamps: string[];
  values: Float64Array;
}

export type Scored = Map<string, Float64Array>;
type ScorerOut = Record<string, { score: number; threshold: number }>;

export function nabRoot(): string {
  const d = [process.env.WHALE_NAB_DIR, resolve('../shared/data/nab-dev')].find(
    (p): p is string => p !== undefined && existsSync(join(p, 'data')),
  );
  if (!d) throw new Error('NAB dev data not found: set WHALE_NAB_DIR');
  return d;
}

export function readNab(root: string): NabFile[] {
  const out: NabFile[] = [];
  for (const cat of readdirSync(join(root, 'data')).sort()) {
    for (const f of readdirSync(join(root, 'data', cat)).sort()) {
      const rows = readFileSync(join(root, 'data', cat, f), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
      out.push({
        key: `${cat}/${f}`,
        category: cat,
        timestamps: rows.map((r) => r.split(',')[0]!),
        values: Float64Array.from(rows, (r) => Number(r.split(',')[1])),
      });
    }
  }
  return out;
}

export function scoreAll(files: NabFile[], options?: AnomalyDetectorOptions): Scored {
  return new Map(files.map((f) => [f.key, new AnomalyDetector(options).updateBatch(f.values).scores]));
}

/**
 * Runs the NAB scorer on `files` (their scores from `scored`). With `binarizeAt`, scores are written
 * as 1 (>= it) or 0, so the scorer cannot pick its own threshold on these files.
 */
export function nabScore(root: string, files: NabFile[], scored: Scored, binarizeAt?: number): ScorerOut {
  const dir = mkdtempSync(join(tmpdir(), 'whale-nab-'));
  try {
    for (const f of files) {
      const s = scored.get(f.key)!;
      const col = (v: number) => (binarizeAt === undefined ? v.toFixed(6) : v >= binarizeAt ? '1' : '0');
      const path = join(dir, f.key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(
        path,
        ['timestamp,anomaly_score', ...f.timestamps.map((t, i) => `${t},${col(s[i]!)}`)].join('\n') + '\n',
      );
    }
    const scorer = resolve(root, '../../tools/nab-score.mjs');
    return JSON.parse(
      execFileSync(process.execPath, [scorer, dir, join(root, 'combined_windows.json'), join(root, 'profiles.json')], {
        encoding: 'utf8',
      }),
    ) as ScorerOut;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Points at or above `threshold` after NAB's probation period (15% of the file, at most 750 points). */
export function countFalsePositives(files: NabFile[], scored: Scored, threshold: number): number {
  let n = 0;
  for (const f of files) {
    const s = scored.get(f.key)!;
    for (let i = Math.min(Math.floor(0.15 * s.length), 750); i < s.length; i++) if (s[i]! >= threshold) n++;
  }
  return n;
}

/** The declared grid: spread x vigilance x rate horizon x decision threshold, other options at their defaults. */
export const LOCO_GRID: AnomalyDetectorOptions[] = [2, 3].flatMap((spread) =>
  [0.05, 0.1, 0.15].flatMap((vigilance) =>
    [1000, 2000].flatMap((rateHorizon) =>
      [0.9, 0.95].map((threshold) => ({ spread, vigilance, rateHorizon, threshold })),
    ),
  ),
);

/** Issue 24's grid of the ART options (bench/RESULTS.md, fixed before the first run), for 'art' and 'ensemble'. */
const ART_GRID: AnomalyDetectorOptions[] = [
  [0.95, 0.9],
  [0.98, 0.96],
  [0.99, 0.98],
].flatMap(([artVigilance, artVigilanceLow]) =>
  [0, 2, 4].flatMap((artSpread) =>
    [1000, 2000].flatMap((rateHorizon) =>
      [0.5, 0.7, 0.9].map((threshold) => ({ artVigilance, artVigilanceLow, artSpread, rateHorizon, threshold })),
    ),
  ),
);

/** Issue 24's grid: every detector with its option grid. */
export const METHOD_GRID: AnomalyDetectorOptions[] = [
  ...LOCO_GRID.map((o) => ({ method: 'whale' as const, ...o })),
  ...ART_GRID.map((o) => ({ method: 'art' as const, ...o })),
  ...ART_GRID.map((o) => ({ method: 'ensemble' as const, ...o })),
];

export const label = (o: AnomalyDetectorOptions) =>
  o.method === undefined || o.method === 'whale'
    ? `${o.method === undefined ? '' : 'whale: '}spread ${o.spread}, vigilance ${o.vigilance}, horizon ${o.rateHorizon}, threshold ${o.threshold}`
    : `${o.method}: vigilance ${o.artVigilance}/${o.artVigilanceLow}, artSpread ${o.artSpread}, horizon ${o.rateHorizon}, threshold ${o.threshold}`;

/** Leave-one-category-out over `grid` (default LOCO_GRID): a table, one row per held-out category. */
export function leaveOneCategoryOut(
  root: string,
  files: NabFile[],
  grid: AnomalyDetectorOptions[] = LOCO_GRID,
  scoredRuns?: Scored[],
): string {
  const LOCO_GRID = grid;
  const runs = LOCO_GRID.map((o, i) => ({ o, scored: scoredRuns?.[i] ?? scoreAll(files, o) }));
  const all = runs.map((r) => nabScore(root, files, r.scored).standard!.score);
  const rows: string[][] = [];
  for (const held of [...new Set(files.map((f) => f.category))]) {
    const sel = files.filter((f) => f.category !== held);
    const out = files.filter((f) => f.category === held);
    const selScores = runs.map((r) => nabScore(root, sel, r.scored).standard!);
    const b = selScores.reduce((bi, s, i) => (s.score > selScores[bi]!.score ? i : bi), 0);
    const thr = selScores[b]!.threshold;
    const hasWindows = out.some((f) => readWindowsCount(root, f.key) > 0);
    const heldFixed = hasWindows
      ? nabScore(root, out, runs[b]!.scored, thr).standard!.score.toFixed(1)
      : `${countFalsePositives(out, runs[b]!.scored, thr)} FP`;
    const heldOwn = hasWindows ? nabScore(root, out, runs[b]!.scored).standard!.score.toFixed(1) : '—';
    rows.push([held, label(LOCO_GRID[b]!), selScores[b]!.score.toFixed(1), thr.toFixed(3), heldFixed, heldOwn]);
  }
  const range = `${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)}`;
  const best = all.indexOf(Math.max(...all));
  return (
    `Leave-one-category-out over ${LOCO_GRID.length} option sets (standard score on all 18 files: ${range}; best ${all[best]!.toFixed(1)} with ${label(LOCO_GRID[best]!)})\n` +
    table(
      [
        'held out',
        'picked on the other two',
        'their score',
        'their threshold',
        'held out at that threshold',
        'held out, own threshold',
      ],
      rows,
    )
  );
}

let windowsCache: Record<string, unknown[]> | undefined;
function readWindowsCount(root: string, key: string): number {
  windowsCache ??= JSON.parse(readFileSync(join(root, 'combined_windows.json'), 'utf8')) as Record<string, unknown[]>;
  return windowsCache[key]?.length ?? 0;
}

export interface GridPoint {
  options: AnomalyDetectorOptions;
  /** Standard score on all 18 files (reported, not used to select). */
  pooled: number;
  /** Per held-out category: the threshold best on the other two, and the held-out score there (or FP count). */
  folds: Record<string, { threshold: number; score?: number; falsePositives?: number }>;
  /** Mean held-out score over the categories with anomaly windows. */
  meanHeldOut: number;
  /** False positives on the categories without windows, at their transferred thresholds. */
  heldOutFP: number;
}

/** Issue 24's rule for one grid point: each category scored at the NAB threshold chosen on the other two. */
export function heldOutScores(
  root: string,
  files: NabFile[],
  options: AnomalyDetectorOptions,
  scored: Scored,
): GridPoint {
  const folds: GridPoint['folds'] = {};
  const held: number[] = [];
  let fp = 0;
  for (const cat of [...new Set(files.map((f) => f.category))]) {
    const sel = files.filter((f) => f.category !== cat);
    const out = files.filter((f) => f.category === cat);
    const threshold = nabScore(root, sel, scored).standard!.threshold;
    if (out.some((f) => readWindowsCount(root, f.key) > 0)) {
      const score = nabScore(root, out, scored, threshold).standard!.score;
      folds[cat] = { threshold, score };
      held.push(score);
    } else {
      const falsePositives = countFalsePositives(out, scored, threshold);
      folds[cat] = { threshold, falsePositives };
      fp += falsePositives;
    }
  }
  const pooled = nabScore(root, files, scored).standard!.score;
  return { options, pooled, folds, meanHeldOut: held.reduce((a, b) => a + b, 0) / held.length, heldOutFP: fp };
}

/** The rule's choice: best mean held-out score; within 0.1 of it fewer FPs, then whale. */
export function chooseDefault(points: GridPoint[]): GridPoint {
  const best = Math.max(...points.map((p) => p.meanHeldOut));
  const near = points.filter((p) => p.meanHeldOut >= best - 0.1);
  near.sort(
    (a, b) =>
      a.heldOutFP - b.heldOutFP ||
      Number(a.options.method !== 'whale') - Number(b.options.method !== 'whale') ||
      b.meanHeldOut - a.meanHeldOut,
  );
  return near[0]!;
}

/** NAB sweep weight of each point of one file (as the scorer computes it), standard profile. */
function sweepWeights(
  root: string,
  f: NabFile,
  cm: { tpWeight: number; fnWeight: number; fpWeight: number },
): { w: Float64Array; win: Int32Array; windows: number } {
  windowsCache ??= JSON.parse(readFileSync(join(root, 'combined_windows.json'), 'utf8')) as Record<string, unknown[]>;
  const t = (s: string) =>
    Date.parse(
      s
        .trim()
        .replace(' ', 'T')
        .replace(/(\.\d{3})\d*$/, '$1') + 'Z',
    );
  const ts = f.timestamps.map(t);
  const wins = (windowsCache[f.key] ?? []) as Array<[string, string]>;
  const lim = wins.map(([a, b]) => {
    const s = t(a);
    const e = t(b);
    let r = -1;
    for (let i = ts.length - 1; i >= 0; i--)
      if (ts[i]! <= e) {
        r = i;
        break;
      }
    return [ts.findIndex((x) => x >= s), r] as const;
  });
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const scaled = (x: number) => (x > 3 ? -1 : 2 * sig(-5 * x) - 1);
  const maxTP = scaled(-1);
  const w = new Float64Array(ts.length);
  const win = new Int32Array(ts.length).fill(-1);
  let k = 0;
  let cur: { l: number; r: number; k: number } | null = null;
  let prevR: number | null = null;
  let prevW = 0;
  for (let i = 0; i < ts.length; i++) {
    if (cur === null && k < lim.length && i === lim[k]![0]) {
      cur = { l: lim[k]![0], r: lim[k]![1], k };
      k++;
    }
    if (cur) {
      w[i] = (scaled(-(cur.r - i + 1) / (cur.r - cur.l + 1)) * cm.tpWeight) / maxTP;
      win[i] = cur.k;
    } else w[i] = (prevR === null ? -1 : scaled(Math.abs(prevR - i) / (prevW - 1))) * cm.fpWeight;
    if (cur && i === cur.r) {
      prevR = i;
      prevW = cur.r - cur.l + 1;
      cur = null;
    }
  }
  return { w, win, windows: lim.length };
}

/**
 * Per-file standard NAB figures at a fixed threshold (the detector's threshold on all 18 files), as the
 * scorer counts them: normalized score (files with windows), false positives, and windows detected.
 */
export function perFile(
  root: string,
  f: NabFile,
  scores: Float64Array,
  threshold: number,
): { score?: number; fp: number; detected: number; windows: number } {
  const cm = { tpWeight: 1, fnWeight: 1, fpWeight: 0.11 };
  const { w, win, windows } = sweepWeights(root, f, cm);
  const prob = Math.min(Math.floor(0.15 * scores.length), 750);
  const best = new Array<number>(windows).fill(-cm.fnWeight);
  const hit = new Array<boolean>(windows).fill(false);
  let fpCost = 0;
  let fp = 0;
  for (let i = prob; i < scores.length; i++) {
    if (!(scores[i]! >= threshold)) continue;
    if (win[i]! >= 0) {
      hit[win[i]!] = true;
      best[win[i]!] = Math.max(best[win[i]!]!, w[i]!);
    } else {
      fpCost += w[i]!;
      fp++;
    }
  }
  const raw = best.reduce((a, b) => a + b, 0) + fpCost;
  const nullScore = -cm.fnWeight * windows;
  return {
    score: windows > 0 ? (100 * (raw - nullScore)) / (windows * cm.tpWeight - nullScore) : undefined,
    fp,
    detected: hit.filter(Boolean).length,
    windows,
  };
}
