/**
 * Codec bench: encode / decode GB/s (input float bytes) per codec for the TS
 * reference (int8), native CPU on one thread and on all, and the GPU when
 * present; beside the machine's triad bandwidth.
 */
import {
  decodeTensor,
  decodeTensorAsync,
  encodeTensor,
  encodeTensorAsync,
  type TensorCodec,
} from '../src/core/memory/codec.js';
import { decodeInt8Ref, encodeInt8Ref, relativeL2Error } from '../src/core/memory/codec-reference.js';
import { engine } from '../src/native/engine.js';
import { fmt, settle, table, timeRuns } from './stats.js';
import { measureTriad } from './triad.js';

const CODECS: TensorCodec[] = ['int8', 'int4', 'fp16', 'bf16'];

function normals(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 7;
  for (let j = 0; j < n; j += 2) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0;
    const u = (s >>> 0) / 4294967296 + 1e-12;
    s = (Math.imul(s, 1664525) + 1013904223) | 0;
    const v = (s >>> 0) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u));
    x[j] = r * Math.cos(2 * Math.PI * v);
    if (j + 1 < n) x[j + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return x;
}

export async function benchQuant(opts: { runs: number; quick: boolean }): Promise<{ text: string; rows: unknown[] }> {
  const triad = measureTriad();
  const gpu = engine.devices().devices.some((d) => d.kind === 'cuda');
  const sizes = opts.quick ? [1 << 20] : [1 << 18, 1 << 20, 1 << 24];
  const rows: string[][] = [];
  const json: unknown[] = [];
  for (const n of sizes) {
    const x = normals(n);
    const out = new Float32Array(n);
    const gbs = (ms: number) => (n * 4) / (ms / 1e3) / 1e9;
    const add = (codec: string, path: string, encMs: number, decMs: number, ratio: number, err: number) => {
      rows.push([
        String(n),
        codec,
        path,
        fmt(gbs(encMs)),
        fmt(gbs(decMs)),
        fmt(gbs(encMs + decMs)),
        fmt(ratio),
        err.toExponential(2),
      ]);
      json.push({
        n,
        codec,
        path,
        encodeGBs: gbs(encMs),
        decodeGBs: gbs(decMs),
        roundTripGBs: gbs(encMs + decMs),
        ratio,
        relL2: err,
      });
    };
    {
      const enc = await timeRuns(Math.min(opts.runs, 3), () => encodeInt8Ref(x, 64));
      const blocks = encodeInt8Ref(x, 64);
      const dec = await timeRuns(Math.min(opts.runs, 3), () => decodeInt8Ref(blocks, 64));
      add(
        'int8',
        'TS reference',
        enc.medianMs,
        dec.medianMs,
        (n * 4) / (n + blocks.scales.byteLength),
        relativeL2Error(x, decodeInt8Ref(blocks, 64)),
      );
    }
    for (const codec of CODECS) {
      const paths: Array<[string, { parallel: boolean; device: 'cpu' | 'cuda:0' }]> = [
        ['native 1 thread', { parallel: false, device: 'cpu' }],
        ['native all threads', { parallel: true, device: 'cpu' }],
      ];
      if (gpu) paths.push(['native GPU', { parallel: true, device: 'cuda:0' }]);
      for (const [path, o] of paths) {
        const blob = encodeTensor(x, { codec, ...o });
        settle();
        const enc = await timeRuns(opts.runs, () => encodeTensor(x, { codec, ...o }));
        settle();
        const dec = await timeRuns(opts.runs, () => decodeTensor(blob, { ...o, out }));
        add(codec, path, enc.medianMs, dec.medianMs, (n * 4) / blob.length, relativeL2Error(x, decodeTensor(blob)));
      }
    }
  }
  // The async calls copy their input (values, or the blob) into native memory first.
  const asyncRows: string[][] = [];
  {
    const n = 1 << 24;
    const x = normals(n);
    const blob = encodeTensor(x, { codec: 'int8' });
    const enc = await timeRuns(opts.runs, () => encodeTensor(x, { codec: 'int8' }));
    const encAsync = await timeRuns(opts.runs, () => encodeTensorAsync(x, { codec: 'int8' }));
    const dec = await timeRuns(opts.runs, () => decodeTensor(blob));
    const decAsync = await timeRuns(opts.runs, () => decodeTensorAsync(blob));
    for (const [what, s, a] of [
      ['encode', enc, encAsync],
      ['decode', dec, decAsync],
    ] as const) {
      asyncRows.push([
        what,
        String(n),
        fmt(s.medianMs),
        fmt(a.medianMs),
        fmt(a.medianMs - s.medianMs),
        `${fmt(a.medianMs / s.medianMs)}x`,
      ]);
      json.push({ n, codec: 'int8', path: `${what} sync vs async`, syncMs: s.medianMs, asyncMs: a.medianMs });
    }
  }
  const text = [
    `memory triad: best ${fmt(triad.bestGBs)} GB/s (all threads)`,
    '',
    table(['floats', 'codec', 'path', 'enc GB/s', 'dec GB/s', 'enc+dec GB/s', 'ratio', 'rel L2 err'], rows),
    '',
    'GB/s of float32 input; medians of the runs, each series after a gc(). Decode writes into a preallocated array; encode allocates its blob.',
    'enc+dec = bytes / (encode time + decode time). Data: N(0,1), block 64.',
    '',
    'int8, sync vs async (the async call copies its input into native memory first; decode also allocates its output):',
    '',
    table(['op', 'floats', 'sync ms', 'async ms', 'async - sync ms', 'async/sync'], asyncRows),
  ].join('\n');
  return { text, rows: json };
}
