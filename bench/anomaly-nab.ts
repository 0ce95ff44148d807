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

type Scored = Map<string, Float64Array>;
type ScorerOut = Record<string, { score: number; threshold: number }>;

export function nabRoot(): string {
  const d = [process.env.WHALE_NAB_DIR, resolve('../shared/data/nab-dev')].find((p): p is string => p !== undefined && existsSync(join(p, 'data')));
  if (!d) throw new Error('NAB dev data not found: set WHALE_NAB_DIR');
  return d;
}

export function readNab(root: string): NabFile[] {
  const out: NabFile[] = [];
  for (const cat of readdirSync(join(root, 'data')).sort()) {
    for (const f of readdirSync(join(root, 'data', cat)).sort()) {
      const rows = readFileSync(join(root, 'data', cat, f), 'utf8').trim().split('\n').slice(1);
      out.push({ key: `${cat}/${f}`, category: cat, timestamps: rows.map((r) => r.split(',')[0]!), values: Float64Array.from(rows, (r) => Number(r.split(',')[1])) });
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
      writeFileSync(path, ['timestamp,anomaly_score', ...f.timestamps.map((t, i) => `${t},${col(s[i]!)}`)].join('\n') + '\n');
    }
    const scorer = resolve(root, '../../tools/nab-score.mjs');
    return JSON.parse(execFileSync(process.execPath, [scorer, dir, join(root, 'combined_windows.json'), join(root, 'profiles.json')], { encoding: 'utf8' })) as ScorerOut;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Points at or above `threshold` after NAB's probation period (15% of the file, at most 750 points). */
function falsePositives(files: NabFile[], scored: Scored, threshold: number): number {
  let n = 0;
  for (const f of files) {
    const s = scored.get(f.key)!;
    for (let i = Math.min(Math.floor(0.15 * s.length), 750); i < s.length; i++) if (s[i]! >= threshold) n++;
  }
  return n;
}

/** The declared grid: spread x vigilance x rate horizon x decision threshold, other options at their defaults. */
export const LOCO_GRID: AnomalyDetectorOptions[] = [2, 3].flatMap((spread) =>
  [0.05, 0.1, 0.15].flatMap((vigilance) => [1000, 2000].flatMap((rateHorizon) => [0.9, 0.95].map((threshold) => ({ spread, vigilance, rateHorizon, threshold })))),
);

const label = (o: AnomalyDetectorOptions) => `spread ${o.spread}, vigilance ${o.vigilance}, horizon ${o.rateHorizon}, threshold ${o.threshold}`;

/** Leave-one-category-out over LOCO_GRID: a table, one row per held-out category. */
export function leaveOneCategoryOut(root: string, files: NabFile[]): string {
  const runs = LOCO_GRID.map((o) => ({ o, scored: scoreAll(files, o) }));
  const all = runs.map((r) => nabScore(root, files, r.scored).standard!.score);
  const rows: string[][] = [];
  for (const held of [...new Set(files.map((f) => f.category))]) {
    const sel = files.filter((f) => f.category !== held);
    const out = files.filter((f) => f.category === held);
    const selScores = runs.map((r) => nabScore(root, sel, r.scored).standard!);
    const b = selScores.reduce((bi, s, i) => (s.score > selScores[bi]!.score ? i : bi), 0);
    const thr = selScores[b]!.threshold;
    const hasWindows = out.some((f) => readWindowsCount(root, f.key) > 0);
    const heldFixed = hasWindows ? nabScore(root, out, runs[b]!.scored, thr).standard!.score.toFixed(1) : `${falsePositives(out, runs[b]!.scored, thr)} FP`;
    const heldOwn = hasWindows ? nabScore(root, out, runs[b]!.scored).standard!.score.toFixed(1) : '—';
    rows.push([held, label(LOCO_GRID[b]!), selScores[b]!.score.toFixed(1), thr.toFixed(3), heldFixed, heldOwn]);
  }
  const range = `${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)}`;
  const best = all.indexOf(Math.max(...all));
  return (
    `Leave-one-category-out over ${LOCO_GRID.length} option sets (standard score on all 18 files: ${range}; best ${all[best]!.toFixed(1)} with ${label(LOCO_GRID[best]!)})\n` +
    table(['held out', 'picked on the other two', 'their score', 'their threshold', 'held out at that threshold', 'held out, own threshold'], rows)
  );
}

let windowsCache: Record<string, unknown[]> | undefined;
function readWindowsCount(root: string, key: string): number {
  windowsCache ??= JSON.parse(readFileSync(join(root, 'combined_windows.json'), 'utf8')) as Record<string, unknown[]>;
  return windowsCache[key]?.length ?? 0;
}
