import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'whale-anomaly-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real `whale` binary (bin/whale.js over dist/). */
async function whale(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['bin/whale.js', ...args], { maxBuffer: 64 << 20 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

function series(n: number, shiftAt: number): string {
  const rows = ['timestamp,value'];
  const t0 = Date.UTC(2024, 0, 1);
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 300_000).toISOString().replace('T', ' ').slice(0, 19);
    rows.push(`${ts},${(20 + 5 * Math.sin(i / 12) + (i >= shiftAt ? 30 : 0)).toFixed(4)}`);
  }
  return rows.join('\n') + '\n';
}

describe('whale anomaly (the real CLI)', () => {
  it('scores one file to --out and to stdout', async () => {
    const input = join(dir, 'one.csv');
    writeFileSync(input, series(2000, 1500));
    const out = join(dir, 'one.scored.csv');
    const r = await whale(['anomaly', input, '--out', out]);
    expect(r.code, r.err).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('timestamp,value,anomaly_score,is_anomaly');
    expect(lines).toHaveLength(2001);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows[0]![0]).toBe('2024-01-01 00:00:00');
    expect(rows.every((c) => Number(c[2]) >= 0 && Number(c[2]) <= 1 && (c[3] === '0' || c[3] === '1'))).toBe(true);
    expect(rows[1500]![3]).toBe('1');
    expect(rows.slice(300, 1500).every((c) => c[3] === '0')).toBe(true);
    const s = await whale(['anomaly', input]);
    expect(s.code).toBe(0);
    expect(s.out).toBe(readFileSync(out, 'utf8'));
  });

  it('--dir keeps the relative paths', async () => {
    const src = join(dir, 'in');
    mkdirSync(join(src, 'a', 'b'), { recursive: true });
    writeFileSync(join(src, 'top.csv'), series(400, 1000));
    writeFileSync(join(src, 'a', 'b', 'deep.csv'), series(500, 450));
    writeFileSync(join(src, 'a', 'notes.txt'), 'not a csv');
    const r = await whale(['anomaly', '--dir', src, '--out-dir', join(dir, 'out')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/scored 2 file/);
    expect(readFileSync(join(dir, 'out', 'top.csv'), 'utf8').split('\n')).toHaveLength(402);
    expect(readFileSync(join(dir, 'out', 'a', 'b', 'deep.csv'), 'utf8').split('\n')[0]).toBe(
      'timestamp,value,anomaly_score,is_anomaly',
    );
  });

  it('--allow-unordered scores a clock set back in file order; --dir scores the good files past a bad one', async () => {
    const rows = series(600, 2000).trim().split('\n');
    // Repeat most of an hour, as NAB's machine_temperature_system_failure.csv does: rows 290-299 come again after row 300.
    const back = [...rows.slice(0, 301), ...rows.slice(290, 302), ...rows.slice(301)];
    const f = join(dir, 'clock-back.csv');
    writeFileSync(f, back.join('\n') + '\n');
    const refused = await whale(['anomaly', f]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/line 302: timestamp .* earlier .*--allow-unordered/);
    const r = await whale(['anomaly', f, '--allow-unordered']);
    expect(r.code, r.err).toBe(0);
    const out = r.out.trim().split('\n');
    expect(out).toHaveLength(back.length);
    expect(out.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(back.slice(1));
    expect(r.err).toMatch(/10 row\(s\) with a timestamp earlier than a row before them, scored in file order/);

    const src = join(dir, 'mixed');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a-good.csv'), series(300, 1000));
    writeFileSync(join(src, 'b-bad.csv'), 'timestamp,value\n2024-01-01 00:00:00,x\n');
    writeFileSync(join(src, 'c-good.csv'), series(300, 1000));
    const d = await whale(['anomaly', '--dir', src, '--out-dir', join(dir, 'mixed-out')]);
    expect(d.code).toBe(2);
    expect(d.out).toMatch(/scored 2 file\(s\) .*; 1 refused/);
    expect(d.err).toMatch(/b-bad\.csv line 2: unparsable or non-finite value 'x'/);
    expect(readFileSync(join(dir, 'mixed-out', 'c-good.csv'), 'utf8').split('\n')).toHaveLength(302);
  });

  it('bad CSVs stop with an error naming the line (exit 2)', async () => {
    const cases: Array<[string, RegExp]> = [
      ['time,value\n2024-01-01 00:00:00,1\n', /line 1: missing column 'timestamp'/],
      [
        'timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n',
        /line 3: unparsable or non-finite value 'abc'/,
      ],
      ['timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n', /line 3: unparsable timestamp 'yesterday'/],
      [
        'timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:10:00,2\n2024-01-01 00:00:00,3\n',
        /line 4: timestamp .* earlier than the previous row/,
      ],
      ['timestamp,value\n2024-01-01 00:00:00,NaN\n', /line 2: unparsable or non-finite value 'NaN'/],
      // Hardening round 2, item 14: a quoted comma is one cell, so this row has 4 cells, not the header's 3 (was scored with value 2).
      [
        'timestamp,note,value\n2024-01-01T00:00:00Z,"nodes 1,2,3 down",7\n2024-01-01T00:05:00Z,"a, b",8,9\n',
        /line 3: expected 3 columns as in the header, got 4/,
      ],
      ['timestamp,value\n2024-01-01 00:00:00,0x1F\n', /line 2: unparsable or non-finite value '0x1F'/],
      ['timestamp,value\n2024-01-01 00:00:00,0b101\n', /line 2: unparsable or non-finite value '0b101'/],
      ['timestamp,value\n2024-01-01 00:00:00,"7\n', /line 2: a quoted cell is not closed/],
    ];
    for (const [i, [text, pattern]] of cases.entries()) {
      const f = join(dir, `bad${i}.csv`);
      writeFileSync(f, text);
      const r = await whale(['anomaly', f]);
      expect(r.code, text).toBe(2);
      expect(r.err).toMatch(pattern);
      expect(r.err).toContain(f);
      expect(r.err).toMatch(/\[ERR_INVALID_ARG\]\n$/);
    }
    // A quoted cell holding commas is read as one cell, by header name; YYYYMMDD is ISO 8601's basic date, not 1970.
    const quoted = join(dir, 'quoted.csv');
    writeFileSync(quoted, 'timestamp,note,value\n20240101,"nodes 1,2,3 down",7\n20240102,"ok ""fine""",8\n');
    const scored = await whale(['anomaly', quoted]);
    expect(scored.code).toBe(0);
    expect(
      scored.out
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',').slice(0, 2).join(',')),
    ).toEqual(['20240101,7', '20240102,8']);
    const { parseTimestamp } = await import('../src/cli/anomaly.js');
    expect(parseTimestamp('20240101')).toBe(Date.parse('2024-01-01T00:00:00Z'));
    expect(parseTimestamp('20240101T123000Z')).toBe(Date.parse('2024-01-01T12:30:00Z'));
    expect(parseTimestamp('1704067200000')).toBe(Date.parse('2024-01-01T00:00:00Z'));
    const usage = await whale(['anomaly']);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/no input file/);
    const help = await whale(['anomaly', '--help']);
    expect(help.out).toMatch(/--out-dir/);
  });

  it("--detector picks the method (same format; the scores are the library's for that method); a bad name exits 2", async () => {
    const { AnomalyDetector } = await import('../src/core/monitoring/health/anomaly-detector.js');
    const input = join(dir, 'det.csv');
    const text = series(1200, 900);
    writeFileSync(input, text);
    const values = Float64Array.from(text.trim().split('\n').slice(1), (l) => Number(l.split(',')[1]));
    for (const method of ['whale', 'art', 'ensemble'] as const) {
      const r = await whale(['anomaly', input, '--detector', method]);
      expect(r.code, r.err).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines[0]).toBe('timestamp,value,anomaly_score,is_anomaly');
      const want = new AnomalyDetector({ method }).updateBatch(values).scores;
      expect(lines.slice(1).map((l) => l.split(',')[2])).toEqual(Array.from(want, (v) => v.toFixed(6)));
    }
    const bad = await whale(['anomaly', input, '--detector', 'htm']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--detector must be one of whale, art, ensemble, got 'htm'/);
  });
});
