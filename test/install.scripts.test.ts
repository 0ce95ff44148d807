// npm install leaves the operating system alone (standard-clients issue): its scripts never call apt or
// sudo, a missing toolchain stops with one line saying what to install, and npm prints no config warnings.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

describe('npm install', () => {
  it('runs no apt-get or sudo from its lifecycle scripts (prepare, install)', () => {
    for (const name of ['preinstall', 'install', 'postinstall', 'prepare'])
      expect(pkg.scripts[name] ?? '', name).not.toMatch(/apt|sudo|ensure-toolchain/);
    // The toolchain check with nothing on PATH but a fake sudo and apt-get that would leave a mark if run.
    const bin = mkdtempSync(join(tmpdir(), 'whale-fakebin-'));
    for (const tool of ['sudo', 'apt-get', 'dnf', 'brew'])
      writeFileSync(join(bin, tool), `#!/bin/sh\ntouch ${join(bin, 'ran-' + tool)}\n`, { mode: 0o755 });
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'check-toolchain.mjs')], {
      env: { PATH: bin },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(readdirSync(bin).filter((f) => f.startsWith('ran-'))).toEqual([]);
  });

  it('stops with one line naming what to install when the toolchain is missing', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'check-toolchain.mjs')], {
      env: { PATH: '/nonexistent' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/needs cmake \(>= 3\.18\), a C\+\+17 compiler .*, make \(or ninja\).*Install them \(/);
    expect(
      spawnSync(process.execPath, [join(root, 'scripts', 'check-toolchain.mjs')], { encoding: 'utf8' }).status,
    ).toBe(0);
  });

  it('has no project .npmrc key npm does not know (npm warned "Unknown project config" on every command)', () => {
    const npmrc = join(root, '.npmrc');
    if (existsSync(npmrc)) expect(readFileSync(npmrc, 'utf8')).not.toMatch(/onnxruntime-node-install/);
    expect((pkg as unknown as { allowScripts: Record<string, boolean> }).allowScripts['onnxruntime-node']).toBe(false);
  });
});
