// Triton's binary tensor data extension on the V2 HTTP endpoint (src/server/v2-binary.ts), on the shipped MNIST model:
// requests built byte by byte as docs/protocol/extension_binary_data.md of triton-inference-server/server describes them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { decodeRawTensor, encodeRawTensor } from '../src/server/v2-binary.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';

const ROWS = 8;
const PIXELS = 784;

/** The body of a binary request: the JSON header's bytes, then each tensor's bytes in order. */
function binaryBody(header: unknown, ...tensors: Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

function float32Bytes(values: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) b.writeFloatLE(values[i]!, i * 4); // little-endian, as the extension says
  return b;
}

async function post(url: string, body: Uint8Array | string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe('V2 binary tensor data extension (mnist)', () => {
  let server: WhaleServer;
  let url: string;
  let outputName: string;
  const { images } = readMnist('test', { count: ROWS });
  const pixels = Array.from(images.subarray(0, ROWS * PIXELS));

  beforeAll(async () => {
    const config = parseConfig({ http: { port: 0 }, shutdownGraceMs: 1_000 }, '/');
    const messaging = new MessagingService({
      bus: new LocalBus(),
      store: new MemoryStateStore(),
      nodeId: 'binary-test',
      logger: silentLogger,
    });
    server = new WhaleServer({ config, messaging, logger: silentLogger, serverVersion: 'test' });
    url = (await server.start()).url;
    const meta = (await (await fetch(`${url}/v2/models/mnist`)).json()) as {
      inputs: { name: string }[];
      outputs: { name: string }[];
    };
    expect(meta.inputs[0]!.name).toBe('input');
    outputName = meta.outputs[0]!.name;
  }, 60_000);
  afterAll(() => server?.stop());

  it('advertises binary_tensor_data', async () => {
    const meta = (await (await fetch(`${url}/v2`)).json()) as { extensions: string[] };
    expect(meta.extensions).toContain('binary_tensor_data');
  });

  it('binary input and binary output give the same scores as the JSON form', async () => {
    const { body, headerLength } = binaryBody(
      {
        id: 'bin-1',
        inputs: [
          {
            name: 'input',
            shape: [ROWS, PIXELS],
            datatype: 'FP32',
            parameters: { binary_data_size: ROWS * PIXELS * 4 },
          },
        ],
        outputs: [{ name: outputName, parameters: { binary_data: true } }],
      },
      float32Bytes(pixels),
    );
    const bin = await post(`${url}/v2/models/mnist/infer`, body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
    });
    expect(bin.status, bin.bytes.toString()).toBe(200);
    expect(bin.headers.get('content-type')).toBe('application/octet-stream');
    const n = Number(bin.headers.get('inference-header-content-length'));
    const header = JSON.parse(bin.bytes.subarray(0, n).toString('utf8'));
    expect(header).toMatchObject({ model_name: 'mnist', id: 'bin-1' });
    expect(header.outputs).toEqual([
      { name: outputName, datatype: 'FP32', shape: [ROWS, 10], parameters: { binary_data_size: ROWS * 10 * 4 } },
    ]);
    expect(bin.bytes.length).toBe(n + ROWS * 10 * 4);
    const raw = bin.bytes.subarray(n);
    const binScores = Array.from({ length: ROWS * 10 }, (_, i) => raw.readFloatLE(i * 4));

    const json = await fetch(`${url}/v2/models/mnist/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [ROWS, PIXELS], datatype: 'FP32', data: pixels }] }),
    });
    expect(json.status).toBe(200);
    expect(json.headers.get('inference-header-content-length')).toBeNull();
    const jsonScores = ((await json.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
    expect(binScores).toEqual(jsonScores);
  });

  it('binary input with a JSON output, and a JSON request asking binary_data_output', async () => {
    const { body, headerLength } = binaryBody(
      {
        inputs: [{ name: 'input', shape: [1, PIXELS], datatype: 'FP32', parameters: { binary_data_size: PIXELS * 4 } }],
      },
      float32Bytes(pixels.slice(0, PIXELS)),
    );
    const a = await post(`${url}/v2/models/mnist/infer`, body, {
      'inference-header-content-length': String(headerLength),
    });
    expect(a.status).toBe(200);
    const jsonOut = JSON.parse(a.bytes.toString()).outputs[0];
    expect(jsonOut.data).toHaveLength(10);

    const b = await post(
      `${url}/v2/models/mnist/infer`,
      JSON.stringify({
        parameters: { binary_data_output: true },
        inputs: [{ name: 'input', shape: [1, PIXELS], datatype: 'FP32', data: pixels.slice(0, PIXELS) }],
      }),
    );
    expect(b.status).toBe(200);
    const n = Number(b.headers.get('inference-header-content-length'));
    expect(JSON.parse(b.bytes.subarray(0, n).toString()).outputs[0].parameters).toEqual({ binary_data_size: 40 });
    expect(Array.from({ length: 10 }, (_, i) => b.bytes.readFloatLE(n + i * 4))).toEqual(jsonOut.data);
  });

  it('raw binary request (Inference-Header-Content-Length: 0): the body is the only input, batch 1, outputs binary', async () => {
    const res = await post(`${url}/v2/models/mnist/infer`, float32Bytes(pixels.slice(0, PIXELS)), {
      'inference-header-content-length': '0',
    });
    expect(res.status, res.bytes.toString()).toBe(200);
    const n = Number(res.headers.get('inference-header-content-length'));
    expect(JSON.parse(res.bytes.subarray(0, n).toString()).outputs[0]).toMatchObject({
      shape: [1, 10],
      parameters: { binary_data_size: 40 },
    });
    expect(res.bytes.length).toBe(n + 40);
  });

  const input = (size: unknown, shape = [1, PIXELS]) => ({
    name: 'input',
    shape,
    datatype: 'FP32',
    parameters: { binary_data_size: size },
  });
  it.each([
    ['binary_data_size past the end of the body', [input(PIXELS * 4 + 4)], PIXELS * 4, /binary_data_size.*run past/],
    [
      'bytes left over after the inputs',
      [input(PIXELS * 4)],
      PIXELS * 4 + 8,
      /8 bytes after the JSON header are not claimed/,
    ],
    ['binary_data_size that does not match the shape', [input(PIXELS * 2)], PIXELS * 2, /needs 3136/],
    ['a negative binary_data_size', [input(-4)], 0, /binary_data_size: must be a non-negative integer/],
    [
      'a binary_data_size that is a string',
      [input('3136')],
      PIXELS * 4,
      /binary_data_size: must be a non-negative integer/,
    ],
    ['data and binary_data_size both', [{ ...input(PIXELS * 4), data: [1] }], PIXELS * 4, /not both/],
  ])('%s → 400 naming the problem', async (_what, inputs, dataBytes, message) => {
    const { body, headerLength } = binaryBody({ inputs }, Buffer.alloc(dataBytes as number));
    const res = await post(`${url}/v2/models/mnist/infer`, body, {
      'inference-header-content-length': String(headerLength),
    });
    expect(res.status).toBe(400);
    const err = JSON.parse(res.bytes.toString()) as { error: string; code: string };
    expect(err.code).toBe('ERR_INVALID_ARG');
    expect(err.error).toMatch(message);
  });

  it('a bad or too large Inference-Header-Content-Length, a cut JSON header, binary_data_size without the header → 400', async () => {
    const { body, headerLength } = binaryBody({ inputs: [input(PIXELS * 4)] }, Buffer.alloc(PIXELS * 4));
    const cases: [Record<string, string>, Uint8Array | string, RegExp][] = [
      [
        { 'inference-header-content-length': 'abc' },
        body,
        /Inference-Header-Content-Length: must be the length in bytes/,
      ],
      [{ 'inference-header-content-length': '-5' }, body, /Inference-Header-Content-Length: must be/],
      [{ 'inference-header-content-length': String(body.length + 1) }, body, /is \d+ but the body has only \d+ bytes/],
      [{ 'inference-header-content-length': String(headerLength - 3) }, body, /JSON header.*not valid JSON/],
      [
        {},
        JSON.stringify({ inputs: [input(PIXELS * 4)] }),
        /binary_data_size: binary tensor data needs the Inference-Header-Content-Length header/,
      ],
      [
        { 'content-type': 'application/octet-stream' },
        body,
        /Inference-Header-Content-Length: a binary \(application\/octet-stream\) infer body needs this header/,
      ],
    ];
    for (const [headers, b, message] of cases) {
      const res = await post(`${url}/v2/models/mnist/infer`, b, headers);
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(JSON.parse(res.bytes.toString()).error).toMatch(message);
    }
  });
});

describe('raw tensor bytes', () => {
  it('BYTES (4-byte little-endian length prefixes), BOOL, INT64 and FP16 round-trip; a misaligned buffer is copied', () => {
    const bytes = Buffer.concat([
      Buffer.from([3, 0, 0, 0]),
      Buffer.from('abc'),
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([2, 0, 0, 0]),
      Buffer.from('é'),
    ]);
    const t = decodeRawTensor('s', 'BYTES', [3], bytes, 'inputs[0]');
    expect(t.data).toEqual(['abc', '', 'é']);
    expect(encodeRawTensor(t)).toEqual(bytes);
    expect(() => decodeRawTensor('s', 'BYTES', [3], bytes.subarray(0, bytes.length - 1), 'inputs[0]')).toThrow(
      /runs past the end/,
    );
    expect(() => decodeRawTensor('s', 'BYTES', [2], bytes, 'inputs[0]')).toThrow(/left over/);

    const flags = decodeRawTensor('b', 'BOOL', [3], Buffer.from([1, 0, 1]), 'x');
    expect(flags.data).toEqual([true, false, true]);
    expect(encodeRawTensor(flags)).toEqual(Buffer.from([1, 0, 1]));
    expect(() => decodeRawTensor('b', 'BOOL', [1], Buffer.from([2]), 'x')).toThrow(/0 or 1/);

    const i64 = Buffer.alloc(17);
    i64.writeBigInt64LE(-5n, 1);
    i64.writeBigInt64LE(1n << 60n, 9);
    const t64 = decodeRawTensor('i', 'INT64', [2], i64.subarray(1), 'x'); // offset 1: not 8-aligned → copied
    expect(Array.from(t64.data as BigInt64Array)).toEqual([-5n, 1n << 60n]);
    expect(encodeRawTensor(t64)).toEqual(i64.subarray(1));

    const aligned = new Uint8Array(new ArrayBuffer(16), 8, 8);
    const view = decodeRawTensor('f', 'FP32', [2], aligned, 'x');
    expect((view.data as Float32Array).buffer).toBe(aligned.buffer); // a view: no copy

    const half = decodeRawTensor('h', 'FP16', [1], Buffer.from([0x00, 0x3c]), 'x');
    expect(half.data).toEqual(new Uint16Array([0x3c00])); // 1.0 as raw half bits
  });
});
