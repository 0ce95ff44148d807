/**
 * A config learner's datasets through the DataRequest service (issue 21): a LocalDataNode on the learner's
 * own node, with a files source rooted at the directory that holds its clients' datasets, answers
 * requestBatch for every client's files (claim-checked into this process's memory); the dataset reader
 * parses the bytes it gets back. Nothing of it travels on the bus the learner shares with its coordinator.
 */
import { dirname, join, relative, sep } from 'node:path';

import { WhaleError } from '../../common/errors.js';
import {
  datasetFilesAmong,
  parseDataset,
  visibleSorted,
  type ReadDatasetOptions,
} from '../../core/federation/learning/data/read-dataset.js';
import type { ClientDataset } from '../../core/federation/learning/dataset.js';
import { DIRECTORY_LISTING, FilesDataSource } from '../../services/data-sources/files-source.js';
import { LocalDataNode } from '../../services/data-sources/local-node.js';

export interface LearnerDataOptions {
  /** The learner's node id (its data node's). */
  nodeId: string;
  /** The DataRequest model id the requests name (the federation's id). */
  modelId: string;
  /** Longest one request may take (default 120 s). */
  timeoutMs?: number;
}

/** The deepest directory holding every path's parent. */
export function dataRoot(paths: readonly string[]): string {
  const parts = paths.map((p) => dirname(p).split(sep));
  const first = parts[0] ?? [];
  let n = first.length;
  for (const p of parts) {
    let i = 0;
    while (i < n && i < p.length && p[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n).join(sep) || sep;
}

/** Every client's dataset (client id -> directory or file), read through the learner's own data node. */
export async function readClientsThroughDataNode(
  clients: Readonly<Record<string, string>>,
  data: ReadDatasetOptions,
  o: LearnerDataOptions,
): Promise<Map<string, ClientDataset>> {
  const root = dataRoot(Object.values(clients));
  const node = await LocalDataNode.start({
    nodeId: o.nodeId,
    // The learner's own files, as readDataset read them (no size cap beyond a buffer's).
    sources: [new FilesDataSource({ dir: root, maxBytes: 2 ** 31 - 1 })],
    defaultTimeoutMs: o.timeoutMs ?? 120_000,
  });
  const ask = (path: string) => ({ query: { path: relative(root, path) }, options: { sourceType: 'files' } });
  // A request the responder could not answer (no such file, a link out of the root) names the dataset.
  const named = (path: string) => (err: unknown) => {
    throw err instanceof WhaleError && err.code === 'ERR_EXECUTION_FAILED'
      ? new WhaleError('ERR_NOT_FOUND', `${path}: cannot read the dataset: ${err.message}`, {
          field: path,
          file: path,
          cause: err,
        })
      : err;
  };
  const out = new Map<string, ClientDataset>();
  try {
    for (const [id, path] of Object.entries(clients)) {
      const whole = ask(path);
      const top = await node.fetch(o.modelId, whole.query, whole.options).catch(named(path));
      if (top.contentType !== DIRECTORY_LISTING) {
        out.set(id, parseDataset([{ name: path, bytes: top.bytes }], data, path));
        continue;
      }
      const { files } = JSON.parse(new TextDecoder().decode(top.bytes)) as { files: string[] };
      const chosen = datasetFilesAmong(
        visibleSorted(files).map((f) => join(path, f)),
        path,
        data,
      ).names;
      const answers = await node.fetchBatch(o.modelId, chosen.map(ask)).catch(named(path));
      out.set(
        id,
        parseDataset(
          chosen.map((name, j) => ({ name, bytes: answers[j]!.bytes })),
          data,
          path,
        ),
      );
    }
  } finally {
    await node.stop();
  }
  return out;
}
