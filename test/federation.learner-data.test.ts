/**
 * A config learner's datasets come through the DataRequest service from its own data node (issue 21):
 * every byte through the files source's responder, parsed as readDataset reads the same directories.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { dataRoot, readClientsThroughDataNode } from '../src/apps/federate/learner-data.js';
import { encodeNpy } from '../src/core/federation/learning/data/arrays.js';
import { readDataset } from '../src/core/federation/learning/data/read-dataset.js';
import type { InMemoryDataset } from '../src/core/federation/learning/dataset.js';
import { FilesDataSource } from '../src/services/data-sources/files-source.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-learner-data-'));
const data = join(dir, 'data');
afterEach(() => void vi.restoreAllMocks());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, body: string | Uint8Array): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, body);
  return path;
}

function fieldsOf(d: InMemoryDataset): Record<string, number[]> {
  return Object.fromEntries(Object.keys(d.fields).map((n) => [n, Array.from(d.field(n).data)]));
}

describe('readClientsThroughDataNode', () => {
  it('reads NPY and CSV directories and a JSON Lines file through the files source, as readDataset does', async () => {
    write(join(data, 'a1', 'x.npy'), encodeNpy(Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5]), [3, 2]));
    write(join(data, 'a1', 'y.npy'), encodeNpy(Int32Array.from([0, 1, 2]), [3]));
    write(join(data, 'a1', 'README.md'), 'not a dataset file');
    write(join(data, 'a1', '.hidden.npy'), 'skipped');
    write(join(data, 'a2', 'part-1.csv'), 'label,p0,p1\n1,10,20\n0,30,40\n');
    write(join(data, 'a2', 'part-2.csv'), 'label,p0,p1\n2,50,60\n');
    write(join(data, 'sub', 'b.jsonl'), '{"x":[1,2],"y":1}\n{"x":[3,4],"y":0}\n');
    const clients = { a1: join(data, 'a1'), a2: join(data, 'a2'), b: join(data, 'sub', 'b.jsonl') };
    const asked: string[] = [];
    const fetch = FilesDataSource.prototype.fetch;
    vi.spyOn(FilesDataSource.prototype, 'fetch').mockImplementation(function (this: FilesDataSource, q, o) {
      asked.push((q as { path: string }).path);
      return fetch.call(this, q, o);
    });
    const got = await readClientsThroughDataNode(
      { a1: clients.a1, b: clients.b },
      {},
      { nodeId: 'learner-1', modelId: 'fed-1' },
    );
    const csv = await readClientsThroughDataNode(
      { a2: clients.a2 },
      { labelColumn: 'label' },
      {
        nodeId: 'learner-2',
        modelId: 'fed-1',
      },
    );
    expect([...got.keys()]).toEqual(['a1', 'b']);
    // The listings, then every dataset file (the README and the hidden file never asked for).
    expect(asked).toEqual(['a1', 'a1/x.npy', 'a1/y.npy', 'sub/b.jsonl', 'a2', 'a2/part-1.csv', 'a2/part-2.csv']);
    expect(fieldsOf(got.get('a1') as InMemoryDataset)).toEqual(fieldsOf(await readDataset(clients.a1)));
    expect(fieldsOf(got.get('b') as InMemoryDataset)).toEqual(fieldsOf(await readDataset(clients.b)));
    expect(fieldsOf(csv.get('a2') as InMemoryDataset)).toEqual(
      fieldsOf(await readDataset(clients.a2, { labelColumn: 'label' })),
    );
    expect(csv.get('a2')!.size).toBe(3);
  });

  it('names the dataset it cannot read: a missing one, one that mixes kinds', async () => {
    write(join(data, 'mixed', 'x.npy'), encodeNpy(Float32Array.from([1]), [1]));
    write(join(data, 'mixed', 'y.csv'), 'label,x\n1,2\n');
    await expect(
      readClientsThroughDataNode({ c: join(data, 'nope') }, {}, { nodeId: 'l', modelId: 'f' }),
    ).rejects.toMatchObject({
      code: 'ERR_NOT_FOUND',
      message: expect.stringMatching(/nope: cannot read the dataset: .*no file 'nope'/),
    });
    await expect(
      readClientsThroughDataNode({ c: join(data, 'mixed') }, {}, { nodeId: 'l', modelId: 'f' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      message: expect.stringMatching(/mixed: mixes npy and csv files/),
    });
  });

  it('roots the files source at the deepest directory holding every client', () => {
    expect(dataRoot(['/d/data/a1', '/d/data/a2', '/d/data/sub/b.jsonl'])).toBe('/d/data');
    expect(dataRoot(['/d/data/a1'])).toBe('/d/data');
  });
});
