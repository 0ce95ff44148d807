// Answers that stream, driven from outside a running WhaleServer: the V2 generate extension over HTTP
// (JSON and server-sent events read with fetch), and streamed ResponseChunks of a session on the bus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResponseChunk } from '../src/services/user-service.js';
import { TOPICS } from '../src/transport/topics.js';
import { until } from './helpers.js';
import { counterModel, http, scaleModel, startTestServer, WIDTH, type TestServer } from './support/serving.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- events are whatever JSON the server sent
type Event = any;

/** Reads a text/event-stream answer event by event (`data: {...}\n\n`). */
export async function* sseEvents(res: Response): AsyncGenerator<Event> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data) yield JSON.parse(data);
    }
  }
}

const post = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

describe('answers that stream (generate, generate_stream, sessions on the bus)', () => {
  let s: TestServer;
  let gate: Promise<void> | undefined;
  const fast = scaleModel('fast', 2);
  const slow = scaleModel('slow', 4, { onBatch: () => gate });
  const counter = counterModel();
  const chunks: ResponseChunk[] = [];

  beforeAll(async () => {
    s = await startTestServer([fast.model, slow.model, counter.model], { pipeline: { defaultModel: 'fast' } });
    await s.bus.subscribe(TOPICS.userResponses, (e) => void chunks.push(e.payload as ResponseChunk), {
      group: 'client',
    });
  });
  afterAll(() => s.stop());

  it('generate answers once with outputs by name; a value without its batch dimension gets one', async () => {
    const r = await http(`${s.url}/v2/models/fast/generate`, { json: { id: 'g1', x: [1, 2, 3, 4] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'g1', model_name: 'fast', model_version: '1', y: [2, 4, 6, 8] });
    expect(r.body.parameters).toMatchObject({ final: true, kind: 'final', level: 'normal', models: 'fast' });
    const nested = await http(`${s.url}/v2/models/fast/generate`, { json: { x: [[1, 1, 1, 1]] } });
    expect(nested.body.y).toEqual([2, 2, 2, 2]);
  });

  it('generate_stream streams a deep request: each ensemble member as it completes, then the combined answer', async () => {
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const res = await post(`${s.url}/v2/models/fast/generate_stream`, {
      x: [1, 2, 3, 4],
      parameters: { level: 'deep' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events: Event[] = [];
    for await (const e of sseEvents(res)) {
      events.push(e);
      // The slow member is still held when the fast one's answer arrives: the stream is live, not replayed.
      if (events.length === 1) release();
    }
    gate = undefined;
    expect(events.length).toBeGreaterThan(1);
    expect(events[0]).toMatchObject({ model_name: 'fast', y: [2, 4, 6, 8], parameters: { kind: 'member', step: 1 } });
    expect(events[1]).toMatchObject({ model_name: 'slow', y: [4, 8, 12, 16], parameters: { kind: 'member', step: 2 } });
    expect(events[2]).toMatchObject({
      model_name: 'fast',
      y: [3, 6, 9, 12],
      parameters: { kind: 'final', final: true, step: 3, level: 'deep', models: 'fast,slow' },
    });
    expect(events).toHaveLength(3);
  });

  it("generate_stream streams a generating model's partial outputs; a failure mid-stream ends it with an error event", async () => {
    const seen: { model: string; ok: boolean; level: string; outputs?: unknown }[] = [];
    const stop = s.server.pipeline.addObserver((o) => seen.push(o));
    const res = await post(`${s.url}/v2/models/counter/generate_stream`, { n: 3, id: 'c' });
    const events: Event[] = [];
    for await (const e of sseEvents(res)) events.push(e);
    expect(events.map((e) => [e.value, e.parameters.kind, e.id])).toEqual([
      [1, 'partial', 'c'],
      [2, 'partial', 'c'],
      [3, 'final', 'c'],
    ]);
    const failing = await post(`${s.url}/v2/models/counter/generate_stream`, { n: 0 });
    expect(failing.status).toBe(200);
    const got: Event[] = [];
    for await (const e of sseEvents(failing)) got.push(e);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ value: 1, parameters: { kind: 'partial' } });
    expect(got[1]).toEqual({ error: 'n: cannot count to 0', code: 'ERR_MODEL_RUN' });
    // The pipeline's observers (metrics, knowledge) saw both, as they see any request.
    stop();
    expect(seen.map((o) => [o.model, o.level, o.ok, o.outputs !== undefined])).toEqual([
      ['counter', 'normal', true, true],
      ['counter', 'normal', false, false],
    ]);
  });

  it('a deep request with one member, or a model without generate(), streams one event: the answer', async () => {
    for (const [model, body] of [
      ['counter', { n: 5, parameters: { level: 'deep' } }],
      ['fast', { x: [1, 1, 1, 1] }],
    ] as const) {
      const events: Event[] = [];
      for await (const e of sseEvents(await post(`${s.url}/v2/models/${model}/generate_stream`, body))) events.push(e);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ model_name: model, parameters: { kind: 'final', step: 1, models: model } });
    }
  });

  it("a lone member streams once another node's model answers the deep request too", async () => {
    s.server.pipeline.setCollaborator({
      collaborate: async ({ model }) =>
        model.name !== 'counter'
          ? []
          : [
              {
                model: 'counter@node-b',
                modelVersion: '1',
                outputs: { value: { name: 'value', datatype: 'INT32', shape: [1], data: Int32Array.of(9) } },
              },
            ],
    });
    try {
      const res = await post(`${s.url}/v2/models/counter/generate_stream`, { n: 5, parameters: { level: 'deep' } });
      const events: Event[] = [];
      for await (const e of sseEvents(res)) events.push(e);
      // The members in the order they completed (here the remote one, answered at once, usually first).
      const rows = events.map((e) => [e.model_name, e.value, e.parameters.kind]);
      expect([...rows.slice(0, 2)].sort()).toEqual([
        ['counter', 5, 'member'],
        ['counter@node-b', 9, 'member'],
      ]);
      expect(rows.slice(2)).toEqual([['counter', 5, 'final']]);
      expect(events[2].parameters.models).toBe('counter,counter@node-b');
    } finally {
      s.server.pipeline.setCollaborator(undefined);
    }
  });

  it('a client that disconnects stops the generation', async () => {
    const before = { ...counter.seen };
    const abort = new AbortController();
    const res = await post(`${s.url}/v2/models/counter/generate_stream`, { n: 100 }, abort.signal);
    for await (const e of sseEvents(res)) {
      expect(e.value).toBe(1);
      abort.abort();
      break;
    }
    expect(await until(() => counter.seen.closed > before.closed, 5_000)).toBe(true);
    const produced = counter.seen.produced - before.produced;
    await new Promise((r) => setTimeout(r, 200));
    // Stopped long before the hundredth step (20 ms each), and stays stopped.
    expect(produced).toBeLessThan(50);
    expect(counter.seen.produced - before.produced).toBe(produced);
  });

  it("a generating model's stream past its timeout_ms ends with a deadline error event and stops", async () => {
    const before = counter.seen.closed;
    const res = await post(`${s.url}/v2/models/counter/generate_stream`, { n: 100, parameters: { timeout_ms: 300 } });
    const events: Event[] = [];
    for await (const e of sseEvents(res)) events.push(e);
    // Far fewer than the hundred steps (20 ms each) it would take to the end.
    expect(events.length).toBeLessThan(50);
    expect(events.slice(0, -1).every((e) => e.parameters.kind === 'partial')).toBe(true);
    expect(events.at(-1)).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED' });
    expect(await until(() => counter.seen.closed > before, 5_000)).toBe(true);
  });

  it('bad input is a typed 400 naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ y: [1, 2, 3, 4] }, 'y'],
      [{}, 'x'],
      [{ x: [1, 2, 3] }, 'x'],
      [{ x: [[[1, 2, 3, 4]]] }, 'x'],
      [{ x: ['a', 2, 3, 4] }, 'x.data[0]'],
      [{ x: [1, 2, 3, 4], parameters: { level: 'deepest' } }, 'parameters.level'],
      [{ x: [1, 2, 3, 4], parameters: { temperature: 1 } }, 'parameters.temperature'],
      [{ x: [1, 2, 3, 4], id: 7 }, 'id'],
      [[1, 2], 'body'],
    ];
    for (const route of ['generate', 'generate_stream']) {
      for (const [body, field] of cases) {
        const r = await http(`${s.url}/v2/models/fast/${route}`, { json: body });
        expect([route, r.status, r.body.code, r.body.field]).toEqual([route, 400, 'ERR_INVALID_ARG', field]);
      }
    }
    expect((await http(`${s.url}/v2/models/nope/generate_stream`, { json: { x: [1] } })).status).toBe(404);
    expect((await http(`${s.url}/v2/models/fast/generate`)).status).toBe(405);
  });

  it('a deep request on the bus streams its members as thinking chunks, then the answer', async () => {
    const user = s.server.messaging.user;
    const { sessionId } = await user.registerUserSession('alice');
    await user.receiveUserRequest(sessionId, {
      id: 'd1',
      level: 'deep',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: [1, 1, 1, 1] }],
    });
    const mine = () => chunks.filter((c) => c.sessionId === sessionId);
    expect(await until(() => mine().some((c) => c.final), 10_000)).toBe(true);
    const got = mine().sort((a, b) => a.seq - b.seq);
    expect(got.map((c) => [c.seq, c.kind, c.final])).toEqual([
      [0, 'thinking', false],
      [1, 'thinking', false],
      [2, 'response', true],
    ]);
    expect(
      got
        .slice(0, 2)
        .map((c) => (c.chunk as { model_name: string }).model_name)
        .sort(),
    ).toEqual(['fast', 'slow']);
    expect(got[2]!.chunk).toMatchObject({ id: 'd1', level: 'deep', models: ['fast', 'slow'], step: 3 });
    expect((got[2]!.chunk as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([3, 3, 3, 3]);
  });

  it("a session tied to a model is served by it, over the bus and over HTTP (chunks on the session's topic)", async () => {
    const user = s.server.messaging.user;
    const { sessionId } = await user.registerUserSession('bob', { plan: 'x' }, { model: 'counter' });
    await user.receiveUserRequest(sessionId, { inputs: [{ name: 'n', datatype: 'INT32', shape: [1], data: [2] }] });
    const mine = () => chunks.filter((c) => c.sessionId === sessionId);
    expect(await until(() => mine().some((c) => c.final), 10_000)).toBe(true);
    expect(mine().map((c) => [c.kind, c.final, (c.chunk as { model_name: string }).model_name])).toEqual([
      ['response', false, 'counter'],
      ['response', true, 'counter'],
    ]);
    // Over HTTP the session continues: its steps stream to the client and onto the session.
    const res = await post(`${s.url}/v2/models/counter/generate_stream`, {
      n: 2,
      parameters: { session_id: sessionId },
    });
    let events = 0;
    for await (const _ of sseEvents(res)) events++;
    expect(events).toBe(2);
    expect(await until(() => mine().length === 4, 5_000)).toBe(true);
    // The same chunks whether the request came by bus or over HTTP.
    expect(mine()[3]!.chunk).toMatchObject({
      model_name: 'counter',
      step: 2,
      level: 'normal',
      outputs: [{ name: 'value', datatype: 'INT32', shape: [1], data: [2] }],
    });
    // Another model, or an ended session, is a conflict naming the parameter.
    const other = await http(`${s.url}/v2/models/fast/generate`, {
      json: { x: [1, 2, 3, 4], parameters: { session_id: sessionId } },
    });
    expect([other.status, other.body.field]).toEqual([409, 'parameters.session_id']);
    await user.endUserSession(sessionId);
    const ended = await http(`${s.url}/v2/models/counter/generate`, {
      json: { n: 1, parameters: { session_id: sessionId } },
    });
    expect([ended.status, ended.body.code]).toEqual([409, 'ERR_CONFLICT']);
    const unknown = await http(`${s.url}/v2/models/counter/generate`, {
      json: { n: 1, parameters: { session_id: 'no-such-session' } },
    });
    expect([unknown.status, unknown.body.field]).toEqual([404, 'parameters.session_id']);
  });
});
