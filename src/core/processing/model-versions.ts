/**
 * Versions of a hosted model (ModelHost): what each is and where it came from, the version a request was
 * admitted on (pinned to its input object), and running a batch whose inputs were admitted on different
 * versions, each group on its own.
 */
import { WhaleError } from '../../common/errors.js';
import type { ModelInterface } from '../base/model.js';
import type { NamedTensors } from '../base/tensor.js';

/** Where a version came from (a federation's round, a file, …): JSON, shown to clients. */
export interface VersionProvenance {
  /** 'config' (whale.config.json), 'federation', or the caller's own word. */
  source: string;
  federationId?: string;
  round?: number;
  /** The evaluation that let it in (e.g. the quality gate's accuracy and loss on the held-out set). */
  evaluation?: Record<string, number>;
  [k: string]: unknown;
}

export interface ModelVersionInfo {
  version: string;
  default: boolean;
  addedAt: string;
  provenance: VersionProvenance;
}

export interface AddVersionOptions {
  provenance: VersionProvenance;
  /** Make it the default version once it loaded (default true). */
  makeDefault?: boolean;
  /** Run before the switch (e.g. one inference): a throw keeps the old default and unloads the new version. */
  check?: (model: ModelInterface) => Promise<void>;
}

/** A version the host holds. */
export interface HeldVersion {
  model: ModelInterface;
  addedAt: string;
  provenance: VersionProvenance;
}

/**
 * The version a request was admitted on, tied to its input object (pinVersion): runBatch runs it on
 * that version even when the default switched while it waited in the queue.
 */
const pinned = new WeakMap<object, { name: string; version: string }>();

export function pinVersion(input: object, name: string, version: string): void {
  pinned.set(input, { name, version });
}

/** The versions, oldest first, the default marked. */
export function versionInfos(versions: ReadonlyMap<string, HeldVersion>, current: ModelInterface): ModelVersionInfo[] {
  return [...versions].map(([version, v]) => ({
    version,
    default: v.model === current,
    addedAt: v.addedAt,
    provenance: v.provenance,
  }));
}

/**
 * A batch whose inputs were admitted on other versions than the default: each group runs on its version
 * (undefined when every input is for the default, the common case).
 */
export function runByPinnedVersion(
  name: string,
  model: ModelInterface,
  versions: ReadonlyMap<string, HeldVersion>,
  inputs: NamedTensors[],
): Promise<NamedTensors[]> | undefined {
  const versionOf = (input: NamedTensors): string => {
    const p = pinned.get(input);
    return p && p.name === name ? p.version : model.version;
  };
  if (inputs.every((i) => versionOf(i) === model.version)) return undefined;
  return (async () => {
    const out = new Array<NamedTensors>(inputs.length);
    const groups = new Map<string, number[]>();
    inputs.forEach((input, i) => {
      const v = versionOf(input);
      groups.set(v, [...(groups.get(v) ?? []), i]);
    });
    await Promise.all(
      [...groups].map(async ([version, at]) => {
        const m = version === model.version ? model : versions.get(version)?.model;
        if (!m)
          throw new WhaleError('ERR_MODEL_NOT_FOUND', `model '${name}' no longer holds version '${version}'`, {
            field: 'version',
          });
        const part = at.map((i) => inputs[i]!);
        const res = await runEach(m, part);
        at.forEach((i, k) => (out[i] = res[k]!));
      }),
    );
    return out;
  })();
}

/** One model run over all inputs when the model batches, else one run per input. */
export async function runEach(model: ModelInterface, inputs: NamedTensors[]): Promise<NamedTensors[]> {
  if (model.processBatch) return model.processBatch(inputs);
  const out: NamedTensors[] = [];
  for (const input of inputs) out.push(await model.process(input));
  return out;
}
