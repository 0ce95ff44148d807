/**
 * Reads a client's dataset from a directory (or one file), in one of four
 * documented layouts (docs/federated-learning.md, "Federate your own model"):
 *
 * - `*.csv`: header row; column `label` (option `labelColumn`) -> field `y`,
 *   the other columns -> field `x` [columns]; several files are concatenated
 *   in name order and must share the header.
 * - `*.jsonl` / `*.ndjson`: one object per line, keys are fields.
 * - `<field>.npy`: one NumPy array per field, examples first.
 * - `<field>.idx` (or `<field>.idx3-ubyte` …): one IDX array per field.
 *
 * A directory holds one of these kinds. `scale` multiplies float fields
 * (e.g. `{ x: 1/255 }` for raw pixels). Every problem is a WhaleError naming
 * the file (and line or field).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

import { WhaleError } from '../../../../common/errors.js';
import { InMemoryDataset, type FieldData } from '../dataset.js';
import { parseIdx, parseNpy, type ParsedArray } from './arrays.js';
import { FieldCollector, parseCsv, parseJsonl } from './text.js';

export type DatasetFormat = 'csv' | 'jsonl' | 'npy' | 'idx';

export interface ReadDatasetOptions {
  /** Default: from the files' extensions. */
  format?: DatasetFormat;
  /** CSV: the label column (default 'label'). */
  labelColumn?: string;
  /** Multiply these fields' values (they become float32), e.g. { x: 1/255 }. */
  scale?: Readonly<Record<string, number>>;
  /** Keep only the first N examples. */
  limit?: number;
}

function formatOf(name: string): DatasetFormat | undefined {
  const ext = extname(name).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.npy') return 'npy';
  if (ext === '.idx' || /\.idx\d-u?byte$/i.test(name) || /-idx\d-u?byte$/i.test(name)) return 'idx';
  return undefined;
}

function fieldName(file: string): string {
  return basename(file)
    .replace(/[.-]idx\d-u?byte$/i, '')
    .replace(/\.[^.]*$/, '');
}

function notFound(path: string, message: string): WhaleError {
  return new WhaleError('ERR_NOT_FOUND', `${path}: ${message}`, { field: path, file: path });
}

/** One file of a dataset: its name (a path; the format and field come from it, messages name it) and bytes. */
export interface DatasetFile {
  name: string;
  bytes: Uint8Array;
}

/**
 * The dataset files among `names` (the kind every one shares, in the order given); `label` names the
 * dataset in messages. Throws when none is a dataset file or kinds are mixed.
 */
export function datasetFilesAmong(
  names: readonly string[],
  label: string,
  o: Pick<ReadDatasetOptions, 'format'> = {},
): { format: DatasetFormat; names: string[] } {
  const kinds = new Map<DatasetFormat, string[]>();
  for (const f of names) {
    const k = o.format ?? formatOf(f);
    if (k) kinds.set(k, [...(kinds.get(k) ?? []), f]);
  }
  if (kinds.size === 0) throw notFound(label, 'no dataset files (.csv, .jsonl, .npy, .idx)');
  if (kinds.size > 1)
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${label}: mixes ${[...kinds.keys()].join(' and ')} files; a dataset directory holds one kind`,
      {
        field: label,
        file: label,
      },
    );
  const [format, list] = [...kinds][0]!;
  return { format, names: list };
}

/** The names of a directory's entries a dataset reader looks at (no hidden files), sorted. */
export function visibleSorted(entries: readonly string[]): string[] {
  return entries.filter((f) => !f.startsWith('.')).sort();
}

/** Reads the dataset at `path` (a directory of one kind of file, or a single .csv/.jsonl file). */
export async function readDataset(path: string, o: ReadDatasetOptions = {}): Promise<InMemoryDataset> {
  let files: string[];
  try {
    const s = await stat(path);
    files = s.isDirectory() ? visibleSorted(await readdir(path)).map((f) => join(path, f)) : [path];
  } catch (err) {
    throw notFound(path, `cannot read the dataset: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { names } = datasetFilesAmong(files, path, o);
  const read: DatasetFile[] = [];
  for (const name of names) read.push({ name, bytes: await readFile(name) });
  return parseDataset(read, o, path);
}

/**
 * A dataset from its files' bytes, read as readDataset reads a directory's (the learner's data node answers
 * them through the DataRequest service). `path` names the dataset in messages and as its source.
 */
export function parseDataset(
  files: readonly DatasetFile[],
  o: ReadDatasetOptions = {},
  path = 'dataset',
): InMemoryDataset {
  const { format, names: list } = datasetFilesAmong(
    files.map((f) => f.name),
    path,
    o,
  );
  const bytesOf = new Map(files.map((f) => [f.name, f.bytes]));
  let fields: Record<string, FieldData>;
  if (format === 'csv' || format === 'jsonl') {
    const into = new FieldCollector();
    let header: string[] | undefined;
    const utf8 = new TextDecoder();
    for (const f of list) {
      const text = utf8.decode(bytesOf.get(f)!);
      if (format === 'csv') header = parseCsv(text, f, into, o.labelColumn, header);
      else parseJsonl(text, f, into);
    }
    fields = into.fields();
    if (Object.keys(fields).length === 0) throw notFound(path, 'the files hold no examples');
  } else {
    fields = {};
    for (const f of list) {
      const name = fieldName(f);
      if (fields[name])
        throw new WhaleError('ERR_INVALID_ARG', `${f}: a second file for field '${name}'`, { field: name, file: f });
      const a: ParsedArray = (format === 'npy' ? parseNpy : parseIdx)(bytesOf.get(f)!, f);
      fields[name] = {
        data: a.data,
        shape: a.shape.slice(1),
        dtype: a.data instanceof Int32Array ? 'int32' : 'float32',
      };
    }
    const sizes = Object.entries(fields).map(
      ([n, f]) =>
        [
          n,
          f.data.length /
            Math.max(
              1,
              (f.shape ?? []).reduce((a, b) => a * b, 1),
            ),
        ] as const,
    );
    const mismatch = sizes.find(([, s]) => s !== sizes[0]![1]);
    if (mismatch)
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `${path}: field '${mismatch[0]}' has ${mismatch[1]} examples, '${sizes[0]![0]}' has ${sizes[0]![1]}`,
        { field: mismatch[0], file: path },
      );
  }
  for (const [name, factor] of Object.entries(o.scale ?? {})) {
    const f = fields[name];
    if (!f)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `scale.${name}: ${path} has no field '${name}' (it has ${Object.keys(fields).join(', ')})`,
        { field: `scale.${name}` },
      );
    if (!Number.isFinite(factor))
      throw new WhaleError('ERR_INVALID_ARG', `scale.${name}: expected a finite number, got ${factor}`, {
        field: `scale.${name}`,
      });
    f.data = Float32Array.from(f.data as ArrayLike<number>, (v) => v * factor);
    f.dtype = 'float32';
  }
  if (o.limit !== undefined) {
    for (const f of Object.values(fields)) {
      const per = (f.shape ?? []).reduce((a, b) => a * b, 1);
      f.data = (f.data as Float32Array | Int32Array).slice(0, o.limit * per);
    }
  }
  return new InMemoryDataset(fields, path);
}
