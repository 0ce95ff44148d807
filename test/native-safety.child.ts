/**
 * One attack on an async native job, run in its own process by
 * test/native-safety.test.ts (node --expose-gc): while the job runs, the
 * input's memory is transferred away (structuredClone + gc) or shrunk
 * (ArrayBuffer.resize(0)). Prints one JSON line, {"result":"correct"} or
 * {"result":"typed-error","code":…,"field":…}, and exits 0; a wrong result
 * exits 1; a crash shows as a signal.
 */
import { WhaleError } from '../src/common/errors.js';
import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { ServerOptimizer } from '../src/core/federation/learning/server-optimizer.js';
import type { Strategy } from '../src/core/federation/learning/types.js';
import { decodeTensor, decodeTensorAsync, encodeTensor, encodeTensorAsync } from '../src/core/memory/codec.js';
import { callNative } from '../src/native/call.js';
import { native } from '../src/native/loader.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

type Kind = 'transfer' | 'resize';

/** Filled with a cheap deterministic pattern; over a resizable ArrayBuffer for 'resize'. */
function makeArray(length: number, seed: number, kind: Kind): Float32Array {
  const a =
    kind === 'resize'
      ? new Float32Array(new ArrayBuffer(length * 4, { maxByteLength: length * 4 }))
      : new Float32Array(length);
  let s = seed | 1;
  for (let j = 0; j < length; j++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0;
    a[j] = (s >> 8) / 65536;
  }
  return a;
}

function attack(arrays: ArrayLike<ArrayBufferView>, kind: Kind): void {
  for (let i = 0; i < arrays.length; i++) {
    const buffer = arrays[i]!.buffer as ArrayBuffer & { resize?: (n: number) => void };
    if (kind === 'transfer') structuredClone(buffer, { transfer: [buffer] });
    else buffer.resize!(0);
  }
  gc!();
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) return false;
  return true;
}

async function aggregate(strategy: Strategy, clients: number, params: number, kind: Kind): Promise<boolean> {
  const rows = Array.from({ length: clients }, (_, i) => makeArray(params, i + 1, kind));
  const agg = new Aggregator({ strategy, f: 2, device: 'cpu', asyncThresholdBytes: 0 });
  const expected = agg.aggregateSync(rows.map((r) => r.slice()));
  const pending = agg.aggregate(rows);
  attack(rows, kind);
  const got = await pending;
  return same(got.params, expected.params) && JSON.stringify(got.selected) === JSON.stringify(expected.selected);
}

async function encode(kind: Kind): Promise<boolean> {
  const values = makeArray(1 << 24, 7, kind);
  const expected = encodeTensor(values.slice(), { codec: 'int8' });
  const pending = encodeTensorAsync(values, { codec: 'int8' });
  attack([values], kind);
  return same(await pending, expected);
}

async function decode(kind: Kind, intoOut: boolean): Promise<boolean> {
  const source = encodeTensor(makeArray(1 << 24, 9, 'transfer'), { codec: 'int8' });
  const blob =
    kind === 'resize'
      ? new Uint8Array(new ArrayBuffer(source.length, { maxByteLength: source.length }))
      : new Uint8Array(source.length);
  blob.set(source);
  const expected = decodeTensor(source);
  const out = intoOut ? makeArray(1 << 24, 1, kind) : undefined;
  const pending = decodeTensorAsync(blob, out ? { out } : {});
  attack(out ? [blob, out] : [blob], kind);
  return same(await pending, expected);
}

async function step(kind: Kind, target: 'global' | 'aggregate'): Promise<boolean> {
  const p = 1 << 23;
  const global = makeArray(p, 3, kind),
    aggregateValues = makeArray(p, 4, kind);
  const reference = new ServerOptimizer({ optimizer: 'fedadam', device: 'cpu' });
  const expected = global.slice();
  reference.stepSync(expected, aggregateValues.slice());
  const opt = new ServerOptimizer({ optimizer: 'fedadam', device: 'cpu' });
  const pending = opt.step(global, aggregateValues);
  attack([target === 'global' ? global : aggregateValues], kind);
  try {
    await pending;
  } catch (err) {
    // Nothing may have been written: the optimizer state stays all zeros.
    const m = opt.state().m;
    if (m && m.some((x) => x !== 0)) throw new Error('the optimizer state changed on a failed step');
    throw err;
  }
  return same(global, expected) && same(opt.state().m!, reference.state().m!);
}

/** A getter in the clients array transfers an earlier row after the binding has read it. */
async function rowsGetter(): Promise<boolean> {
  const rows = [makeArray(1 << 22, 1, 'transfer'), makeArray(1 << 22, 2, 'transfer')];
  const clients: Float32Array[] = [rows[0]!];
  Object.defineProperty(clients, 1, {
    enumerable: true,
    get: () => {
      attack([rows[0]!], 'transfer');
      return rows[1];
    },
  });
  const opts = {
    strategy: 'fedavg',
    clients,
    weights: new Float64Array([1, 1]),
    beta: 0.1,
    f: 0,
    m: 1,
    checkFinite: true,
    device: 'cpu',
    deviceIndex: 0,
  };
  callNative(() => native().aggregate(opts as never, false));
  return false; // row 0 is gone: only a typed error is right
}

/** An options getter transfers `values` after the binding has read it. */
async function optionsGetter(): Promise<boolean> {
  const values = makeArray(1 << 24, 5, 'transfer');
  const opts = {
    values,
    get codec() {
      attack([values], 'transfer');
      return 'int8';
    },
    blockSize: 64,
    nonFinite: 'error',
    parallel: true,
    device: 'cpu',
    deviceIndex: 0,
  };
  const blob = callNative(() => native().quantEncode(opts as never, false));
  return decodeTensor(blob).length === 0; // encodes what `values` holds when it is read: nothing
}

const ATTACKS: Record<string, () => Promise<boolean>> = {
  'rows-getter-transfer': rowsGetter,
  'options-getter-transfer': optionsGetter,
  'median-transfer': () => aggregate('median', 24, 1 << 21, 'transfer'),
  'median-resize': () => aggregate('median', 24, 1 << 21, 'resize'),
  'fedavg-transfer': () => aggregate('fedavg', 24, 1 << 21, 'transfer'),
  'trimmed-mean-resize': () => aggregate('trimmed-mean', 24, 1 << 21, 'resize'),
  'multi-krum-transfer': () => aggregate('multi-krum', 12, 1 << 20, 'transfer'),
  'encode-transfer': () => encode('transfer'),
  'encode-resize': () => encode('resize'),
  'decode-transfer': () => decode('transfer', false),
  'decode-resize': () => decode('resize', false),
  'decode-out-transfer': () => decode('transfer', true),
  'decode-out-resize': () => decode('resize', true),
  'step-global-transfer': () => step('transfer', 'global'),
  'step-global-resize': () => step('resize', 'global'),
  'step-aggregate-transfer': () => step('transfer', 'aggregate'),
  'step-aggregate-resize': () => step('resize', 'aggregate'),
};

const name = process.argv[2] ?? '';
const run = ATTACKS[name];
if (!run) {
  process.stdout.write(`unknown attack '${name}'; one of ${Object.keys(ATTACKS).join(', ')}\n`);
  process.exit(2);
}
try {
  const correct = await run();
  process.stdout.write(`${JSON.stringify({ result: correct ? 'correct' : 'wrong' })}\n`);
  process.exit(correct ? 0 : 1);
} catch (err) {
  if (!(err instanceof WhaleError)) throw err;
  process.stdout.write(`${JSON.stringify({ result: 'typed-error', code: err.code, field: err.field })}\n`);
  process.exit(0);
}
