// Issue 23, items 9 and 10, from outside: `whale start` as a child process with models that cannot load, and what an
// anonymous HTTP client can read of the server's machine.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { until } from './helpers.js';

const root = resolve(import.meta.dirname, '..');
const whale = join(root, 'bin', 'whale.js');
const mnist = join(root, 'models', 'mnist', 'model.onnx');
const env = { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '' };

function configDir(models: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'whale-models-'));
  writeFileSync(join(dir, 'whale.config.json'), JSON.stringify({ http: { port: 0 }, models, shutdownGraceMs: 1000 }));
  return dir;
}

function startIn(dir: string, extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [whale, 'start'], {
    cwd: dir,
    env: { ...env, WHALE_CACHE_DIR: join(dir, 'cache'), ...extraEnv },
  });
  const io = { out: '', err: '', exit: undefined as number | null | undefined };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r((io.exit = code))));
  return { child: child as ChildProcessWithoutNullStreams, io, exited };
}

const onnx = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
  name,
  adapter: 'onnx',
  path,
  ...extra,
});

describe('whale start with a model that cannot load (issue 23 item 9)', () => {
  const good = readFileSync(mnist);
  const cases: Array<[string, (file: string) => void]> = [
    ['missing', () => undefined],
    ['empty', (f) => writeFileSync(f, '')],
    ['truncated', (f) => writeFileSync(f, good.subarray(0, Math.floor(good.length / 3)))],
    ['garbage', (f) => writeFileSync(f, Buffer.from('this is not an onnx model\n'.repeat(40)))],
  ];
  it.each(cases)(
    'a %s model file fails the start: exit 2, one line naming the model, nothing served',
    (_what, make) => {
      const dir = configDir([onnx('mnist', 'model.onnx')]);
      make(join(dir, 'model.onnx'));
      const r = spawnSync(process.execPath, [whale, 'start'], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...env, WHALE_CACHE_DIR: join(dir, 'cache') },
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^whale: model 'mnist' cannot be loaded: .+ \[ERR_MODEL_LOAD\]\n$/);
      expect(r.stderr).toContain('"optional": true');
      expect(r.stdout).not.toMatch(/serving/);
    },
    40_000,
  );

  it('one good and one broken model: exit 2 naming the broken one', () => {
    const dir = configDir([onnx('mnist', mnist), onnx('broken', 'nothing-here.onnx')]);
    const r = spawnSync(process.execPath, [whale, 'start'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...env, WHALE_CACHE_DIR: join(dir, 'cache') },
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^whale: model 'broken' cannot be loaded: .+ \[ERR_MODEL_LOAD\]\n$/);
    expect(r.stderr).not.toMatch(/'mnist'/);
    expect(r.stdout).not.toMatch(/serving/);
  }, 40_000);

  it('an optional model that cannot load: the node serves the others, reports it without paths, and loads it once the file is restored', async () => {
    const dir = configDir([onnx('mnist', mnist), onnx('spare', 'spare.onnx', { optional: true })]);
    const { child, io, exited } = startIn(dir);
    try {
      expect(await until(() => /serving /.test(io.out) || io.exit !== undefined, 30_000), io.err).toBe(true);
      expect(io.out).toMatch(/serving mnist \(not loaded yet: spare\) on http/);
      expect(io.err).toMatch(/optional model 'spare' is not loaded/);
      const url = /on (http:\/\/[\d.]+:\d+)/.exec(io.out)![1]!;
      const get = async (p: string) => {
        const res = await fetch(`${url}${p}`);
        return { status: res.status, text: await res.text() };
      };
      // The node is ready (the required model is); the optional one is reported as not ready, without server paths.
      expect((await get('/v2/health/ready')).status).toBe(200);
      expect(JSON.parse((await get('/v2/models/spare/ready')).text)).toMatchObject({ name: 'spare', ready: false });
      const stats = await get('/v2/models/spare/stats');
      expect(stats.status).toBe(200);
      expect(JSON.parse(stats.text).model_stats[0]).toMatchObject({ name: 'spare', state: 'failed', optional: true });
      const healthz = await get('/healthz');
      expect(JSON.parse(healthz.text).checks.find((c: { name: string }) => c.name === 'models')).toMatchObject({
        ok: true,
        reason: expect.stringMatching(/model 'spare' \(optional\) is failed/),
      });
      const infer = await fetch(`${url}/v2/models/spare/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0) }],
        }),
      });
      const inferText = await infer.text();
      expect(infer.status).toBe(503);
      for (const body of [stats.text, healthz.text, inferText]) {
        expect(body).not.toContain(dir);
        expect(body).not.toContain(root);
        expect(body).not.toMatch(/"\/[a-z]+\//);
      }
      // Restoring the file brings the model up (load retried with backoff).
      copyFileSync(mnist, join(dir, 'spare.onnx'));
      expect(
        await until(async () => JSON.parse((await get('/v2/models/spare/ready')).text).ready === true, 20_000),
      ).toBe(true);
      const ok = await fetch(`${url}/v2/models/spare/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0) }],
        }),
      });
      expect(ok.status).toBe(200);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('what an anonymous client reads of the server (issue 23 item 10)', () => {
  it('stats, /healthz and /v1/resources carry no model path, cache directory or machine details', async () => {
    const dir = configDir([onnx('mnist', mnist)]);
    const { child, io, exited } = startIn(dir);
    try {
      expect(await until(() => /serving /.test(io.out) || io.exit !== undefined, 30_000), io.err).toBe(true);
      const url = /on (http:\/\/[\d.]+:\d+)/.exec(io.out)![1]!;
      const stats = await (await fetch(`${url}/v2/models/mnist/stats`)).text();
      expect(JSON.parse(stats).model_stats[0]).toMatchObject({ name: 'mnist', state: 'ready' });
      expect(stats).not.toMatch(/\.onnx|"path"/); // no file path in Triton's statistics shape
      const healthz = await (await fetch(`${url}/healthz`)).text();
      expect(JSON.parse(healthz).checks.find((c: { name: string }) => c.name === 'disk')).toMatchObject({ ok: true });
      expect(await until(async () => (await (await fetch(`${url}/v1/resources`)).json()).usage !== null, 10_000)).toBe(
        true,
      );
      const resources = await (await fetch(`${url}/v1/resources`)).text();
      const r = JSON.parse(resources);
      expect(r.models.mnist).toBeDefined();
      expect(r.usage.cpu).toBeDefined();
      expect(r.usage.memory).toBeUndefined();
      expect(r.usage.disks).toBeUndefined();
      expect(r.usage.network).toBeUndefined();
      for (const body of [stats, healthz, resources]) {
        expect(body).not.toContain(mnist);
        expect(body).not.toContain(join(dir, 'cache'));
        expect(body).not.toContain(root);
        expect(body).not.toMatch(/"rss"/);
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
    }
  }, 60_000);
});
