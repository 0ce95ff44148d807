import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { main } from '../src/cli/main.js';
import { hasGpu } from './helpers.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '',
    err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe('whale CLI', () => {
  it('info prints the build, the devices and why no GPU is used', async () => {
    const r = await run(['info']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/CPU path\s+yes/);
    expect(r.out).toMatch(/CUDA path\s+(yes|no)/);
    expect(r.out).toMatch(/^\s+cpu\s+\d+ threads/m);
    if (!hasGpu) expect(r.out).toMatch(/No GPU is used: .+/);
    expect(r.out).toMatch(/ONNX\s+onnxruntime-node [\d.]+, (cpu|cuda) execution provider/);
    expect(r.out).toMatch(/TF\.js\s+@tensorflow\/tfjs[\w-]* [\d.]+, backend (wasm|cpu|tensorflow)/);
  });

  it('info --json is machine-readable', async () => {
    const r = await run(['info', '--json']);
    const j = JSON.parse(r.out) as { version: string; build: { cuda: boolean }; devices: Array<{ id: string }> };
    expect(j.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(j.devices[0]!.id).toBe('cpu');
  });

  it('usage errors exit 2 with a message on stderr', async () => {
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/);
    const badFlag = await run(['info', '--nope']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.err).toMatch(/--nope/);
  });

  it('start serves on the in-process bus and stops when asked', async () => {
    const { startCommand } = await import('../src/cli/start.js');
    const ac = new AbortController();
    let out = '';
    const running = startCommand({ out: (s) => (out += s), err: () => undefined }, { port: 0 }, ac.signal);
    const end = Date.now() + 20_000;
    while (!out.includes('serving') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(out).toMatch(/serving mnist on http:\/\/127\.0\.0\.1:\d+ .* the in-process bus/);
    ac.abort();
    expect(await running).toBe(0);
    expect(out).toMatch(/stopped/);
  });

  it('each command takes only its own options and arguments (hardening round 2, item 17)', async () => {
    for (const args of [
      ['--json'],
      ['info', 'extra'],
      ['info', '--port', '9'],
      ['anomaly', '--json', 'x.csv'],
      ['start', '--dir', 'x'],
      ['anomaly', 'a.csv', 'b.csv'],
      ['--bogus'],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
    }
    expect((await run(['info', 'extra'])).err).toMatch(/unexpected argument 'extra'/);
    expect((await run(['info', '--port', '9'])).err).toMatch(/--port/);
  });

  it("whale help <command> prints that command's usage", async () => {
    expect((await run(['help', 'federate'])).out).toMatch(/^Usage: whale federate/);
    expect((await run(['help', 'anomaly'])).out).toMatch(/^Usage: whale anomaly/);
    expect((await run(['help', 'info'])).out).toMatch(/^Usage: whale info/);
    expect((await run(['help'])).out).toMatch(/^Usage: whale <command>/);
    expect((await run(['help', 'nope'])).code).toBe(2);
  });

  it('a reader that closes stdout early ends the command quietly (whale anomaly big.csv | head -1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-epipe-'));
    const csv = join(dir, 'big.csv');
    const t0 = Date.parse('2024-01-01T00:00:00Z');
    writeFileSync(
      csv,
      `timestamp,value\n${Array.from({ length: 200_000 }, (_, i) => `${new Date(t0 + i * 60_000).toISOString()},${Math.sin(i / 50)}`).join('\n')}\n`,
    );
    const child = spawn(process.execPath, [resolve(import.meta.dirname, '..', 'bin', 'whale.js'), 'anomaly', csv]);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy()); // what `head -1` does after its line
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(err).not.toMatch(/EPIPE|Error|at /);
    expect(code).toBe(0);
  });

  it('start --check loads every model and exits 0, or 2 naming the model that cannot load; it serves nothing', async () => {
    const ok = await run(['start', '--check']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/model 'mnist' \(onnx, version 1\): loads/);
    expect(ok.out).toMatch(/ok, 1 model\(s\) load/);
    const dir = mkdtempSync(join(tmpdir(), 'whale-check-'));
    writeFileSync(
      join(dir, 'whale.config.json'),
      JSON.stringify({ models: [{ name: 'gone', adapter: 'onnx', path: 'missing.onnx' }] }),
    );
    const bad = await run(['start', '--check', '--config', join(dir, 'whale.config.json')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/model 'gone' cannot be loaded/);
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ http: { port: 'x' } }));
    expect((await run(['start', '--check', '--config', invalid])).code).toBe(2);
  });

  it('help and version', async () => {
    expect((await run(['--help'])).out).toMatch(/Usage: whale/);
    expect((await run(['--version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
