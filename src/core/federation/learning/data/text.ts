/**
 * Text dataset files. CSV: a header row, then one example per row; the label
 * column (default `label`) becomes field `y`, every other column field `x`
 * (float32, shape [columns]). JSON Lines: one object per line, each key a
 * field, each value a number or a nested array of numbers of the same shape
 * on every line. A scalar field whose values are all integers is int32 (a
 * class label), every other field float32.
 */
import { WhaleError } from '../../../../common/errors.js';
import type { FieldData } from '../dataset.js';

function bad(file: string, line: number, message: string, field?: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${file}:${line}: ${message}`, {
    field: field ?? file,
    file,
    line,
  });
}

/** Values gathered field by field while parsing, before the dtype is known. */
export class FieldCollector {
  private readonly values = new Map<string, { shape: number[]; data: number[]; integers: boolean }>();

  add(name: string, shape: number[], values: number[], file: string, line: number): void {
    let f = this.values.get(name);
    if (!f) this.values.set(name, (f = { shape, data: [], integers: true }));
    else if (f.shape.length !== shape.length || f.shape.some((d, i) => d !== shape[i]))
      throw bad(
        file,
        line,
        `field '${name}' has shape [${shape.join(', ')}], earlier examples [${f.shape.join(', ')}]`,
        name,
      );
    for (const v of values) {
      f.data.push(v);
      if (!Number.isInteger(v)) f.integers = false;
    }
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  fields(): Record<string, FieldData> {
    const out: Record<string, FieldData> = {};
    for (const [name, f] of this.values)
      out[name] =
        f.shape.length === 0 && f.integers
          ? { data: Int32Array.from(f.data), shape: f.shape, dtype: 'int32' }
          : { data: Float32Array.from(f.data), shape: f.shape, dtype: 'float32' };
    return out;
  }
}

function lines(text: string): string[] {
  return text.split(/\r?\n/);
}

/** One CSV file into `into` (numbers only; quoted fields are not needed for numeric data and are refused). */
export function parseCsv(
  text: string,
  file: string,
  into: FieldCollector,
  labelColumn = 'label',
  header?: string[],
): string[] {
  const rows = lines(text);
  const head = (rows[0] ?? '').split(',').map((s) => s.trim());
  if (head.length === 0 || head[0] === '') throw bad(file, 1, 'no header row (column names)');
  if (header && head.join(',') !== header.join(','))
    throw bad(file, 1, `header differs from the directory's first CSV file (${header.slice(0, 5).join(',')}…)`);
  const label = head.indexOf(labelColumn);
  if (label < 0)
    throw bad(
      file,
      1,
      `no '${labelColumn}' column (the label); columns: ${head.slice(0, 8).join(', ')}${head.length > 8 ? ', …' : ''}`,
      labelColumn,
    );
  const features = head.length - 1;
  if (features < 1) throw bad(file, 1, 'no feature columns besides the label');
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.trim() === '') continue;
    const cells = row.split(',');
    if (cells.length !== head.length) throw bad(file, r + 1, `${cells.length} columns, the header has ${head.length}`);
    const x: number[] = [];
    let y = 0;
    for (let c = 0; c < cells.length; c++) {
      const s = cells[c]!.trim();
      const v = Number(s);
      if (s === '' || !Number.isFinite(v))
        throw bad(file, r + 1, `column '${head[c]}': not a number: ${JSON.stringify(s)}`, head[c]);
      if (c === label) y = v;
      else x.push(v);
    }
    into.add('x', [features], x, file, r + 1);
    into.add('y', [], [y], file, r + 1);
  }
  return head;
}

function shapeOf(v: unknown, file: string, line: number, name: string): number[] {
  if (typeof v === 'number') return [];
  if (!Array.isArray(v) || v.length === 0)
    throw bad(file, line, `field '${name}': expected a number or a non-empty array of numbers`, name);
  const inner = shapeOf(v[0], file, line, name);
  return [v.length, ...inner];
}

function flat(v: unknown, shape: number[], out: number[], file: string, line: number, name: string): void {
  if (shape.length === 0) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw bad(file, line, `field '${name}': not a finite number: ${JSON.stringify(v)}`, name);
    out.push(v);
    return;
  }
  if (!Array.isArray(v) || v.length !== shape[0])
    throw bad(file, line, `field '${name}': ragged array (expected ${shape[0]} items at this level)`, name);
  for (const item of v) flat(item, shape.slice(1), out, file, line, name);
}

/** One JSON Lines file into `into`. */
export function parseJsonl(text: string, file: string, into: FieldCollector): void {
  const rows = lines(text);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!.trim();
    if (row === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(row);
    } catch (err) {
      throw bad(file, r + 1, `not JSON: ${(err as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw bad(file, r + 1, 'expected one JSON object per line');
    const keys = Object.keys(obj);
    const known = into.names();
    if (known.length > 0 && (keys.length !== known.length || keys.some((k) => !known.includes(k))))
      throw bad(file, r + 1, `fields ${keys.join(', ')} differ from the first example's ${known.join(', ')}`);
    for (const k of keys) {
      const v = (obj as Record<string, unknown>)[k];
      const shape = shapeOf(v, file, r + 1, k);
      const values: number[] = [];
      flat(v, shape, values, file, r + 1, k);
      into.add(k, shape, values, file, r + 1);
    }
  }
}
