// `whale start` as a user runs it: the real CLI in a child process, on the shipped MNIST model.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { until } from './helpers.js';
import { readMnist } from '../src/models/mnist-idx.js';

const root = resolve(import.meta.dirname, '..');
const whale = join(root, 'bin', 'whale.js');
const env = { ...process.env, KAFKA_BROKERS: '', REDIS_URL: '', WHALE_LOG_LEVEL: 'warn', WHALE_CONFIG: '' };

function startCli(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [whale, 'start', ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'whale-cli-')),
    env: { ...env, ...extraEnv },
  });
  const io = { out: '', err: '', exit: undefined as number | null | undefined };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r((io.exit = code))));
  return { child: child as ChildProcessWithoutNullStreams, io, exited };
}

describe('whale start (child process)', () => {
  it('stays up, answers V2 requests on the shipped model, and exits 0 on SIGINT with the shutdown line', async () => {
    const { child, io, exited } = startCli(['--port', '0']);
    try {
      expect(
        await until(() => /serving .* on http:\/\/[\d.]+:\d+/.test(io.out) || io.exit !== undefined, 30_000),
        io.err,
      ).toBe(true);
      const url = /on (http:\/\/[\d.]+:\d+)/.exec(io.out)![1]!;
      await new Promise((r) => setTimeout(r, 3000));
      expect(io.exit, `exited early: ${io.err}`).toBeUndefined();
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
      const { images, labels } = readMnist('test', { count: 8 });
      const res = await fetch(`${url}/v2/models/mnist/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [{ name: 'input', datatype: 'FP32', shape: [8, 784], data: Array.from(images) }],
        }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      expect(body.outputs[0]!.shape).toEqual([8, 10]);
      const predicted = Array.from({ length: 8 }, (_, i) => {
        const row = body.outputs[0]!.data.slice(i * 10, i * 10 + 10);
        return row.indexOf(Math.max(...row));
      });
      expect(predicted.filter((p, i) => p === labels[i]).length).toBeGreaterThanOrEqual(7);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(io.out).toMatch(/SIGINT: shutting down/);
      expect(io.out).toMatch(/stopped/);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
    }
  }, 60_000);

  it('Ctrl-C delivered twice at once (terminal + npm forwarding) still drains and exits 0; `npm start` reaches node', async () => {
    const { child, io, exited } = startCli(['--port', '0']);
    try {
      expect(await until(() => /serving /.test(io.out) || io.exit !== undefined, 30_000), io.err).toBe(true);
      child.kill('SIGINT');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(io.out).toMatch(/stopped/);
      expect(io.err).not.toMatch(/again: exiting now/);
    } finally {
      if (io.exit === undefined) child.kill('SIGKILL');
    }
    // npm runs scripts through `sh -c`: without exec, a signal sent to npm's child stops at the shell.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toMatch(/^exec node bin\/whale\.js start$/);
  }, 60_000);

  it('--help prints the usage and starts nothing', () => {
    const r = spawnSync(process.execPath, [whale, 'start', '--help'], { encoding: 'utf8', env, timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: whale start/);
    expect(r.stdout).not.toMatch(/serving/);
  });

  it('startup errors print `whale: … [CODE]` (no stack trace) with the documented exit code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-cli-'));
    writeFileSync(
      join(dir, 'whale.config.json'),
      JSON.stringify({ models: [{ name: 'm', adapter: 'onnx', path: 'm.onnx', batching: { maxBatchSize: -1 } }] }),
    );
    const bad = spawnSync(process.execPath, [whale, 'start'], { cwd: dir, encoding: 'utf8', env, timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^whale: models\[0\]\.batching\.maxBatchSize: must be >= 1, got -1 \[ERR_CONFIG\]\n$/);
    const port = spawnSync(process.execPath, [whale, 'start', '--port', 'eighty'], {
      encoding: 'utf8',
      env,
      timeout: 20_000,
    });
    expect(port.status).toBe(2);
    expect(port.stderr).toMatch(/--port must be a port number/);
  });

  it('an unreachable Kafka fails the start with a typed error and exit 1, not a stack trace', async () => {
    const { io, exited } = startCli(['--port', '0'], { KAFKA_BROKERS: '127.0.0.1:1' });
    const code = await exited;
    expect(code).toBe(1);
    expect(io.err).toMatch(/^whale: .+ \[ERR_[A-Z_]+\]$/m);
    expect(io.err).not.toMatch(/^\s+at /m);
  }, 120_000);
});
