import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import type { NativeBinding } from '../src/native/binding.js';
import { engine } from '../src/native/engine.js';
import { candidatePaths, injectNative, loadNativeFrom } from '../src/native/loader.js';
import { expectWhaleError } from './helpers.js';

describe('native loader', () => {
  afterEach(() => injectNative(undefined));

  it('a missing addon is ERR_NATIVE_NOT_FOUND listing every path and the fix', async () => {
    const e = await expectWhaleError(() => loadNativeFrom(['/nope/a.node', '/nope/b.node']), 'ERR_NATIVE_NOT_FOUND');
    expect(e.message).toContain('/nope/a.node: file not found');
    expect(e.message).toContain('/nope/b.node: file not found');
    expect(e.message).toContain('npm run build:native');
  });

  it('a broken addon is ERR_NATIVE_LOAD with its cause', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-'));
    const bad = join(dir, 'whale_native.node');
    writeFileSync(bad, 'not an ELF file');
    const e = await expectWhaleError(() => loadNativeFrom(['/nope/a.node', bad]), 'ERR_NATIVE_LOAD');
    expect(e.message).toContain(bad);
    expect(e.message).toMatch(/invalid ELF header|file too short/);
  });

  it('WHALE_NATIVE_PATH is tried first', () => {
    expect(candidatePaths({ WHALE_NATIVE_PATH: '/x/y.node' })[0]).toBe('/x/y.node');
    expect(candidatePaths({})[0]).toMatch(/build\/Release\/whale_native\.node$/);
  });

  it('an injected binding replaces the addon', () => {
    const fake = {
      buildInfo: () => ({
        version: 't',
        cuda: false,
        cudaArchitectures: '',
        cudaRuntime: '',
        compiler: 'fake',
        simd: 'none',
        threads: 1,
      }),
      devices: () => ({
        cpuThreads: 3,
        cuda: { compiled: false, unavailableReason: 'fake', devices: [] },
        nvml: { loaded: false, driverVersion: '', error: 'fake', devices: [] },
      }),
    } as unknown as NativeBinding;
    injectNative(fake);
    expect(engine.devices().devices[0]).toEqual({ id: 'cpu', kind: 'cpu', threads: 3 });
    expect(engine.build().addonPath).toBeUndefined();
    injectNative(undefined);
    expect(engine.build().compiler).not.toBe('fake');
  });
});
