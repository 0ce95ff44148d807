// Importing the package starts nothing: a child process imports the built package (the root and every subpath
// of package.json "exports", through the package's own name) and must find no timer, socket, worker or other
// handle left, then exit by itself. Also: the public API is explicit (no `export *` in src/index.ts or the
// entries), and the root exports every name of every subpath. Needs the build (npm run build:ts; npm test does it).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types?: string; import?: string; default?: string }>;
};
const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
const specifier = (sub: string) => (sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`);

// Runs in the child. async_hooks sees every resource the import creates, unref'd timers and servers included
// (getActiveResourcesInfo and _getActiveHandles list only what keeps the loop alive); those not destroyed once
// the import has settled are left. Not counted, as they start nothing and keep nothing alive: promises; the
// module loader's file handles (FILEHANDLE, destroyed only at GC); one-shot Immediate/TickObject; the idle DNS
// channel that importing node:dns creates (pg, ioredis); the stdout/stderr streams (PIPEWRAP, TTYWRAP) that a
// dependency may open at import (the \`debug\` package in kafkajs and ioredis asks whether stderr is a TTY).
const PROBE = `
import { createHook } from 'node:async_hooks';
const live = new Map();
const hook = createHook({
  init(id, type) { if (type !== 'PROMISE') live.set(id, type); },
  destroy(id) { live.delete(id); },
}).enable();
const m = await import(process.argv[1]);
for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
hook.disable();
const benign = new Set(['FILEHANDLE', 'FILEHANDLECLOSEREQ', 'Immediate', 'TickObject', 'DNSCHANNEL', 'PIPEWRAP', 'TTYWRAP']);
const left = [...live.values()].filter((type) => !benign.has(type));
const keepAlive = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
process.stdout.write(JSON.stringify({ names: Object.keys(m), left, keepAlive }));
`;

interface Probe {
  names: string[];
  /** async resources created by the import and still alive */
  left: string[];
  /** what keeps the event loop alive */
  keepAlive: string[];
}

function probe(
  spec: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; probe?: Probe; stderr: string }> {
  return new Promise((resolve, reject) => {
    // No test-only environment: the import must start nothing whatever WHALE_* says, so pass the parent's.
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE, spec], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // It must exit by itself; a leftover ref'd handle keeps it alive until this kill.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let parsed: Probe | undefined;
      try {
        parsed = JSON.parse(out) as Probe;
      } catch {
        parsed = undefined;
      }
      resolve({ code, signal, ...(parsed ? { probe: parsed } : {}), stderr: err });
    });
  });
}

const built = existsSync(path.join(root, 'dist/src/index.js'));

describe('package import', () => {
  it('package.json exports the root and the area subpaths, each with types and an import target', () => {
    expect(subpaths).toEqual(
      expect.arrayContaining([
        '.',
        './federation',
        './serving',
        './monitoring',
        './memory',
        './resources',
        './quality',
      ]),
    );
    for (const sub of subpaths) {
      const target = pkg.exports[sub];
      expect(typeof target === 'object' && target?.types && target.import, sub).toBeTruthy();
      const t = target as { types: string; import: string };
      expect(t.types, sub).toBe(t.import.replace(/\.js$/, '.d.ts'));
      // dist/src/X.js comes from src/X.ts
      const source = path.join(root, t.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'));
      expect(existsSync(source), `${sub} → ${source}`).toBe(true);
    }
  });

  it('src/index.ts and the entries name every export (no `export *`)', () => {
    const files = [
      path.join(root, 'src/index.ts'),
      ...readdirSync(path.join(root, 'src/entry')).map((f) => path.join(root, 'src/entry', f)),
    ];
    for (const file of files) expect(readFileSync(file, 'utf8'), file).not.toMatch(/^\s*export\s*\*/m);
  });

  it('the root re-exports exactly the names (values and types) of the entries, each once', () => {
    const names = (file: string): string[] =>
      [...readFileSync(file, 'utf8').matchAll(/^export (?:type )?\{([^}]*)\} from '[^']+';/gm)].flatMap((m) =>
        m[1]!
          .split(',')
          .map((n) => n.trim().replace(/^type\s+/, ''))
          .filter(Boolean)
          .map((n) => n.split(/\s+as\s+/).pop()!),
      );
    const rootNames = names(path.join(root, 'src/index.ts'));
    expect(rootNames.filter((n, i) => rootNames.indexOf(n) !== i)).toEqual([]);
    const entryNames = new Set(
      readdirSync(path.join(root, 'src/entry')).flatMap((f) => names(path.join(root, 'src/entry', f))),
    );
    expect(entryNames.size).toBeGreaterThan(300);
    expect([...entryNames].filter((n) => !rootNames.includes(n))).toEqual([]);
    expect(rootNames.filter((n) => !entryNames.has(n))).toEqual([]);
  });

  it('importing the root or any subpath leaves no timer or handle and the process exits by itself', async () => {
    expect(built, 'dist/src/index.js is missing: run `npm run build:ts` (npm test builds first)').toBe(true);
    const names = new Map<string, string[]>();
    for (const sub of subpaths) {
      const spec = specifier(sub);
      const r = await probe(spec);
      expect({ spec, code: r.code, signal: r.signal, stderr: r.stderr.trim() }).toEqual({
        spec,
        code: 0,
        signal: null,
        stderr: '',
      });
      expect(r.probe, spec).toBeDefined();
      expect({ spec, left: r.probe!.left, keepAlive: r.probe!.keepAlive }).toEqual({ spec, left: [], keepAlive: [] });
      names.set(sub, r.probe!.names);
    }
    // The root exports every value of every subpath.
    const rootNames = new Set(names.get('.'));
    for (const [sub, list] of names)
      expect({ sub, missing: list.filter((n) => !rootNames.has(n)) }).toEqual({ sub, missing: [] });
  }, 300_000);

  it("the probe sees what a module starts at import, even unref'd", async () => {
    const r = await probe(path.join(root, 'test/fixtures/import/leaky.mjs'));
    expect(r.code).toBe(0);
    expect(r.probe?.left.sort()).toEqual(['TCPSERVERWRAP', 'Timeout']);
  });
});
