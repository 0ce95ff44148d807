/**
 * Model versions in serving: a model holds several versions, /v2/models/{m}/versions/{v} serves each,
 * the default switches atomically while clients keep sending (zero failed requests, every answer
 * computed by the version it names), a request running on the old version finishes on it, and a
 * version that cannot load leaves the default as it was.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { defineModel } from '../src/core/base/model.js';
import type { NamedTensors } from '../src/core/base/tensor.js';
import { http, startTestServer, type TestServer, WIDTH } from './support/serving.js';

/** y = factor·x; `gate` holds a run until released (to keep a request in flight across a switch). */
function versioned(version: string, factor: number, o: { gate?: () => Promise<void>; failLoad?: boolean } = {}) {
  const run = async (input: NamedTensors): Promise<NamedTensors> => {
    await o.gate?.();
    const x = input.x!;
    return {
      y: {
        name: 'y',
        datatype: 'FP32',
        shape: x.shape,
        data: Float32Array.from(x.data as Float32Array, (v) => v * factor),
      },
    };
  };
  return defineModel({
    name: 'm',
    version,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, WIDTH] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, WIDTH] }],
    load: () => {
      if (o.failLoad) throw new Error('weights file is damaged');
    },
    process: run,
  });
}

const body = (v: number) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: [v, v, v, v] }] });

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('model versions', () => {
  it('switches the default while a client loop runs: zero failures, each answer from the version it names', async () => {
    t = await startTestServer([versioned('1', 2)], { m: { version: '1' } });
    const { url, server } = t;
    const answers: Array<{ version: string; factor: number }> = [];
    const failures: string[] = [];
    let sending = true;
    const loop = async () => {
      for (let i = 1; sending; i++) {
        const r = await http(`${url}/v2/models/m/infer`, { json: body(i) });
        if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body)}`);
        else answers.push({ version: r.body.model_version, factor: r.body.outputs[0].data[0] / i });
      }
    };
    const loops = Array.from({ length: 6 }, loop);
    await expect.poll(() => answers.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(10);
    const info = await server.host.addVersion(versioned('2', 3), {
      provenance: { source: 'federation', federationId: 'f1', round: 4, evaluation: { accuracy: 0.9 } },
    });
    expect(info).toMatchObject({ version: '2', default: true });
    const before = answers.length;
    await expect.poll(() => answers.length - before, { timeout: 20_000 }).toBeGreaterThanOrEqual(10);
    sending = false;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    const v1 = answers.filter((a) => a.version === '1');
    const v2 = answers.filter((a) => a.version === '2');
    expect(v1.length).toBeGreaterThan(0);
    expect(v2.length).toBeGreaterThan(0);
    expect(v1.every((a) => a.factor === 2) && v2.every((a) => a.factor === 3)).toBe(true);
    console.log(
      `model versions: ${answers.length} answers during the switch (${v1.length} v1, ${v2.length} v2), 0 failed`,
    );

    // Each version keeps serving under /versions/{v}; the model's metadata lists both, default first, with provenance.
    const old = await http(`${url}/v2/models/m/versions/1/infer`, { json: body(5) });
    expect(old.body).toMatchObject({ model_version: '1', outputs: [{ data: [10, 10, 10, 10] }] });
    const meta = await http(`${url}/v2/models/m`);
    expect(meta.body.versions).toEqual(['2', '1']);
    expect(meta.body.version_info).toMatchObject({
      version: '2',
      default: true,
      provenance: { source: 'federation', federationId: 'f1', round: 4 },
    });
    expect((await http(`${url}/v2/models/m/versions/1`)).body.version_info.provenance).toEqual({ source: 'config' });
    const missing = await http(`${url}/v2/models/m/versions/9/infer`, { json: body(1) });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/no version '9'/);
  });

  it('a request running on the old version finishes on it; a version that cannot load rolls back', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let slow = true;
    let entered = false;
    // Two instances: the request after the switch does not queue behind the held one.
    t = await startTestServer(
      [versioned('1', 2, { gate: () => ((entered = true), slow ? held : Promise.resolve()) })],
      {
        m: { version: '1', batching: { instances: 2 } },
      },
    );
    const { url, server } = t;
    const inFlight = http(`${url}/v2/models/m/infer`, { json: body(1) });
    await expect.poll(() => entered, { timeout: 20_000 }).toBe(true); // running on version 1
    await server.host.addVersion(versioned('2', 3), { provenance: { source: 'test' } });
    const after = await http(`${url}/v2/models/m/infer`, { json: body(1) });
    expect(after.body).toMatchObject({ model_version: '2', outputs: [{ data: [3, 3, 3, 3] }] });
    slow = false;
    release();
    expect((await inFlight).body).toMatchObject({ model_version: '1', outputs: [{ data: [2, 2, 2, 2] }] });

    await expect(
      server.host.addVersion(versioned('3', 4, { failLoad: true }), { provenance: { source: 'test' } }),
    ).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD', message: expect.stringMatching(/kept version '2'.*damaged/) });
    await expect(
      server.host.addVersion(versioned('4', 4), {
        provenance: { source: 'test' },
        check: async () => {
          throw new Error('probe answered NaN');
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    expect(server.host.versions('m').map((v) => v.version)).toEqual(['1', '2']);
    expect((await http(`${url}/v2/models/m/infer`, { json: body(2) })).body).toMatchObject({ model_version: '2' });
    await expect(server.host.addVersion(versioned('2', 5), { provenance: { source: 'test' } })).rejects.toMatchObject({
      code: 'ERR_CONFLICT',
    });
  });
});
