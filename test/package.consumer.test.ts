/**
 * The package as another project sees it: pack the tarball, install it into a
 * fresh project (npm resolves its dependencies; the packed prebuilt addon is
 * used since npm skips dependencies' install scripts), then compile every
 * ```ts example of README.md and docs/*.md with tsc against the installed types and run it.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Runs a child without blocking this worker's event loop (a minute-long execFileSync starves
 * vitest's worker RPC: "Timeout calling onTaskUpdate"). Resolves with status, signal and output.
 */
function run(
  cmd: string,
  args: string[],
  o: { cwd: string; timeout?: number; env?: NodeJS.ProcessEnv },
): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { ...o, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      done({
        status: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr: stderr || (e && typeof e.code !== 'number' ? e.message : ''),
      });
    });
  });
}

async function runOk(
  cmd: string,
  args: string[],
  o: { cwd: string; timeout?: number; env?: NodeJS.ProcessEnv },
): Promise<string> {
  const r = await run(cmd, args, o);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
  return r.stdout;
}

/** A Markdown file's ```ts blocks, in order. */
export function tsExamples(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** Every ```ts example of README.md and docs/*.md, named after its page (`memory-1`, `writing-a-model-2`). */
export function docExamples(): { name: string; file: string; code: string }[] {
  const pages = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ];
  return pages.flatMap((file) =>
    tsExamples(readFileSync(join(root, file), 'utf8')).map((code, i) => ({
      name: `${file.replace(/^docs\//, '').replace(/\.md$/, '')}-${i + 1}`,
      file,
      code,
    })),
  );
}

/** A consumer file that imports every subpath of package.json "exports" (types through tsc, values when run). */
export function subpathExample(): { name: string; file: string; code: string } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, unknown>;
  };
  const subs = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json');
  const code =
    subs.map((s, i) => `import * as a${i} from '${pkg.name}/${s.slice(2)}';\n`).join('') +
    `const empty = [${subs.map((s, i) => `['${s}', Object.keys(a${i}).length]`).join(', ')}].filter(([, n]) => n === 0);\n` +
    `if (empty.length > 0) throw new Error('subpaths without exports: ' + JSON.stringify(empty));\n`;
  return { name: 'subpaths', file: 'package.json exports', code };
}

describe('the packed package in a consumer project', () => {
  let dir: string;
  const examples = [...docExamples(), subpathExample()];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'whale-consumer-'));
    await runOk(process.execPath, [join(root, 'scripts', 'prebuild-copy.mjs')], { cwd: root });
    const packed = await runOk(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root });
    const tarball = join(dir, (JSON.parse(packed) as { filename: string }[])[0]!.filename);
    const app = join(dir, 'app');
    mkdirSync(join(app, 'examples'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'whale-consumer', private: true, type: 'module' }));
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          outDir: 'out',
          rootDir: 'examples',
        },
        include: ['examples/*.ts'],
      }),
    );
    // onnxruntime-node's own install script downloads optional CUDA libraries (from nuget.org): a consumer
    // project runs it, and this machine may be offline. The README's setting for offline installs skips it.
    await runOk(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: app,
      timeout: 400_000,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
  }, 600_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true }); // the installed node_modules: seconds on a busy disk
  }, 180_000);

  it('installs with main/types/exports that resolve, and no file of the repo is needed', async () => {
    const app = join(dir, 'app');
    const installed = join(app, 'node_modules', 'smart-whale-core');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { main: string; types: string };
    expect(readdirSync(join(installed, 'prebuilds'))).toContain(`${process.platform}-${process.arch}`);
    const out = await runOk(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('smart-whale-core'); console.log(typeof m.WhaleError, typeof m.Aggregator, typeof m.messagingService)",
      ],
      { cwd: app },
    );
    expect(out.trim()).toBe('function function function');
    expect(readFileSync(join(installed, pkg.types), 'utf8')).toContain('export');
  });

  it('compiles every example of README.md and docs/*.md with tsc (strict) and runs each to a clean exit', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(9);
    const app = join(dir, 'app');
    for (const { name, code } of examples) writeFileSync(join(app, 'examples', `${name}.ts`), code);
    const tsc = await run(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
      { cwd: app },
    );
    expect(tsc.stdout + tsc.stderr, 'tsc output').toBe('');
    expect(tsc.status).toBe(0);
    for (const { name, file, code } of examples) {
      const ex = await run(process.execPath, [join(app, 'out', `${name}.js`)], {
        cwd: app,
        timeout: 120_000,
        env: { ...process.env, WHALE_LOG_LEVEL: 'warn', KAFKA_BROKERS: '', REDIS_URL: '', WHALE_HTTP_PORT: '0' },
      });
      expect(`${ex.status} ${ex.signal}`, `example ${name} (${file}) failed:\n${code}\n--- stderr:\n${ex.stderr}`).toBe(
        '0 null',
      );
    }
  }, 600_000);
});
