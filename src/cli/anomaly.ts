/** `whale anomaly`: runs the streaming anomaly detector over timestamp,value CSV files. */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

import { WhaleError } from '../common/errors.js';
import {
  ANOMALY_METHODS,
  AnomalyDetector,
  type AnomalyDetectorOptions,
  type AnomalyMethod,
} from '../core/monitoring/health/anomaly-detector.js';

export const ANOMALY_USAGE = `Usage: whale anomaly INPUT.csv [--out OUT.csv] [--detector NAME] [--threshold T] [--allow-unordered]
       whale anomaly --dir DIR --out-dir OUT [--detector NAME] [--threshold T] [--allow-unordered]

Reads rows of timestamp,value (a header naming both columns is required; rows in time order)
and writes timestamp,value,anomaly_score,is_anomaly (to stdout without --out). With --dir, every
.csv under DIR is scored into OUT at the same relative path. Timestamps: ISO 8601 (2024-01-01T12:00:00Z,
'YYYY-MM-DD HH:MM:SS' or basic 20240101[T120000]; UTC unless a zone is given), or epoch milliseconds.
Cells may be quoted (RFC 4180); every row has the header's column count; values are decimal numbers.
--detector: ${ANOMALY_METHODS.join(', ')} (default: the
library's default method). --threshold: decision threshold in (0, 1] (default: the detector's).
A malformed file (missing column, unparsable number or timestamp, out-of-order row) stops with
an error naming the file and line; with --dir the other files are still scored, each bad file is
reported, and the exit code is 2. --allow-unordered scores rows whose timestamp goes back (a clock
set back, a repeated hour) in file order instead of refusing them, and says how many there were.
Exit codes: 0 ok, 1 runtime failure, 2 usage or input error.
`;

export interface AnomalyArgs {
  input?: string;
  out?: string;
  dir?: string;
  outDir?: string;
  threshold?: string;
  /** The detector (AnomalyDetectorOptions.method). */
  detector?: string;
  allowUnordered?: boolean;
}

interface Series {
  timestamps: string[];
  values: string[];
  times: Float64Array;
  numbers: Float64Array;
  /** Rows whose timestamp is earlier than an earlier row's (only with allowUnordered). */
  backwards: number;
}

function fail(file: string, line: number, what: string): never {
  throw new WhaleError('ERR_INVALID_ARG', `${file} line ${line}: ${what}`, { field: 'input', line });
}

/**
 * Milliseconds since the epoch, or NaN. Zone-less date-times are UTC. Accepted: ISO 8601
 * extended (2024-01-01, 2024-01-01T12:00:00Z, '2024-01-01 12:00:00') and basic (20240101,
 * 20240101T120000Z), or epoch milliseconds (any other run of digits).
 */
export function parseTimestamp(text: string): number {
  const s = text.trim();
  const basic = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(s);
  if (basic && (basic[4] !== undefined || validDate(basic[1]!, basic[2]!, basic[3]!))) {
    return Date.parse(
      `${basic[1]}-${basic[2]}-${basic[3]}T${basic[4] ?? '00'}:${basic[5] ?? '00'}:${basic[6] ?? '00'}Z`,
    );
  }
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return NaN;
  const time = (m[2] ?? '00:00:00').replace(/(\.\d{3})\d+$/, '$1');
  return Date.parse(`${m[1]}T${time}${m[3] ?? 'Z'}`);
}

function validDate(y: string, mo: string, d: string): boolean {
  const t = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  return Number(y) >= 1900 && t.getUTCMonth() === Number(mo) - 1 && t.getUTCDate() === Number(d);
}

/** A decimal number as CSV files write them; hex, binary, 'Infinity' and blanks are refused. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** One CSV record (RFC 4180 quoting: "a,b" is one cell, "" inside quotes is a quote), or undefined if a quote is left open. */
function splitCsv(line: string): string[] | undefined {
  const cells: string[] = [];
  let cell = '',
    quoted = false,
    i = 0;
  while (i < line.length) {
    const c = line[i]!;
    i++;
    if (quoted) {
      if (c === '"' && line[i] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (c === ',') {
      cells.push(cell.trim());
      cell = '';
    } else cell += c;
  }
  if (quoted) return undefined;
  cells.push(cell.trim());
  return cells;
}

export function readSeriesCsv(file: string, o: { allowUnordered?: boolean } = {}): Series {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) fail(file, 1, 'empty file: expected a header with timestamp and value columns');
  const header = splitCsv(lines[0]!.replace(/^\uFEFF/, ''));
  if (!header) fail(file, 1, 'a quoted header cell is not closed');
  const head = header.map((h) => h.toLowerCase());
  const ti = head.indexOf('timestamp');
  const vi = head.indexOf('value');
  if (ti < 0 || vi < 0)
    fail(file, 1, `missing column '${ti < 0 ? 'timestamp' : 'value'}' in the header (got: ${lines[0]})`);
  const n = lines.length - 1;
  const s: Series = {
    timestamps: [],
    values: [],
    times: new Float64Array(n),
    numbers: new Float64Array(n),
    backwards: 0,
  };
  for (let i = 0; i < n; i++) {
    const lineNo = i + 2;
    const cells = splitCsv(lines[i + 1]!);
    if (!cells) fail(file, lineNo, 'a quoted cell is not closed (quoted line breaks are not supported)');
    if (cells.length !== head.length)
      fail(file, lineNo, `expected ${head.length} columns as in the header, got ${cells.length}`);
    const ts = cells[ti]!;
    const val = cells[vi]!;
    const t = parseTimestamp(ts);
    if (!Number.isFinite(t)) fail(file, lineNo, `unparsable timestamp '${ts}'`);
    const v = DECIMAL.test(val) ? Number(val) : NaN;
    if (!Number.isFinite(v)) fail(file, lineNo, `unparsable or non-finite value '${val}' (expected a decimal number)`);
    if (Math.abs(v) > 1e300) fail(file, lineNo, `value '${val}' beyond the supported magnitude 1e300`);
    let time = t;
    if (i > 0 && t < s.times[i - 1]!) {
      if (!o.allowUnordered) {
        fail(
          file,
          lineNo,
          `timestamp '${ts}' is earlier than the previous row's '${s.timestamps[i - 1]}' (rows must be in time order; --allow-unordered scores them in file order)`,
        );
      }
      // The detector needs non-decreasing times: the row keeps its place and the latest time seen.
      s.backwards++;
      time = s.times[i - 1]!;
    }
    s.timestamps.push(ts);
    s.values.push(val);
    s.times[i] = time;
    s.numbers[i] = v;
  }
  return s;
}

export function scoreCsv(
  file: string,
  options: AnomalyDetectorOptions,
  o: { allowUnordered?: boolean } = {},
): { text: string; backwards: number } {
  const s = readSeriesCsv(file, o);
  const { scores, anomalies } = new AnomalyDetector(options).updateBatch(s.numbers, s.times);
  const rows = ['timestamp,value,anomaly_score,is_anomaly'];
  for (let i = 0; i < scores.length; i++)
    rows.push(`${s.timestamps[i]},${s.values[i]},${scores[i]!.toFixed(6)},${anomalies[i]}`);
  return { text: rows.join('\n') + '\n', backwards: s.backwards };
}

function unorderedNote(file: string, backwards: number): string {
  return `${file}: ${backwards} row(s) with a timestamp earlier than a row before them, scored in file order\n`;
}

function csvFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...csvFiles(p));
    else if (entry.isFile() && entry.name.toLowerCase().endsWith('.csv')) out.push(p);
  }
  return out;
}

function usage(message: string): never {
  throw new WhaleError('ERR_INVALID_ARG', `${message} (see whale anomaly --help)`, { field: 'args' });
}

/** Returns the exit code; malformed input is a WhaleError (ERR_INVALID_ARG) for main() to print. */
export function anomalyCommand(
  args: AnomalyArgs,
  out: (s: string) => void,
  err: (s: string) => void = (t) => void process.stderr.write(t),
): number {
  const options: AnomalyDetectorOptions = {};
  if (args.threshold !== undefined) {
    const t = Number(args.threshold);
    if (!(t > 0 && t <= 1)) usage(`--threshold must be a number in (0, 1], got '${args.threshold}'`);
    options.threshold = t;
  }
  if (args.detector !== undefined) {
    if (!(ANOMALY_METHODS as readonly string[]).includes(args.detector))
      usage(`--detector must be one of ${ANOMALY_METHODS.join(', ')}, got '${args.detector}'`);
    options.method = args.detector as AnomalyMethod;
  }
  if (args.dir !== undefined) {
    if (args.input !== undefined || args.out !== undefined) usage('--dir takes --out-dir, not an input file or --out');
    if (args.outDir === undefined) usage('--dir needs --out-dir');
    if (!statSync(args.dir, { throwIfNoEntry: false })?.isDirectory()) usage(`--dir '${args.dir}' is not a directory`);
    const files = csvFiles(args.dir);
    const failed: string[] = [];
    for (const f of files) {
      const target = join(args.outDir, relative(args.dir, f));
      let scored;
      try {
        scored = scoreCsv(f, options, { allowUnordered: args.allowUnordered === true });
      } catch (e) {
        if (!(e instanceof WhaleError) || e.code !== 'ERR_INVALID_ARG') throw e;
        err(`whale: ${e.message} [${e.code}]\n`);
        failed.push(f);
        continue;
      }
      if (scored.backwards > 0) err(unorderedNote(f, scored.backwards));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, scored.text);
    }
    out(
      `scored ${files.length - failed.length} file(s) into ${args.outDir}${failed.length > 0 ? `; ${failed.length} refused (above)` : ''}\n`,
    );
    return failed.length > 0 ? 2 : 0;
  }
  if (args.input === undefined) usage('no input file given');
  if (args.outDir !== undefined) usage('--out-dir goes with --dir');
  if (!statSync(args.input, { throwIfNoEntry: false })?.isFile()) usage(`input '${args.input}' is not a file`);
  const { text, backwards } = scoreCsv(args.input, options, { allowUnordered: args.allowUnordered === true });
  if (backwards > 0) err(unorderedNote(args.input, backwards));
  if (args.out === undefined) out(text);
  else {
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, text);
  }
  return 0;
}
