// docs/configuration.md's environment table is src/common/env.ts's ENV_VARS, row for row: a variable added,
// renamed or re-described in one place and not the other fails here (the message holds the table to paste).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ENV_VARS, parseList, readEnv } from '../src/common/env.js';

const DOC = join(__dirname, '..', 'docs', 'configuration.md');
const HEADER = ['| variable | type | default | read by | effect |', '| --- | --- | --- | --- | --- |'];

const expectedTable = (): string[] => [
  ...HEADER,
  ...ENV_VARS.map((v) => `| \`${v.name}\` | ${v.type} | ${v.default} | ${v.readBy} | ${v.description} |`),
];

/** The first table after the "## Environment variables" heading. */
function docTable(): string[] {
  const lines = readFileSync(DOC, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.trim() === '## Environment variables');
  expect(at, 'docs/configuration.md has a "## Environment variables" section').toBeGreaterThanOrEqual(0);
  const start = lines.findIndex((l, i) => i > at && l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start, end === -1 ? undefined : end).map((l) => l.trim());
}

describe('environment variables', () => {
  it('docs/configuration.md lists exactly ENV_VARS', () => {
    const want = expectedTable();
    expect(docTable(), `docs/configuration.md's table must be:\n${want.join('\n')}\n`).toEqual(want);
  });

  it('declares each variable once', () => {
    const names = ENV_VARS.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('src/ reads no variable it does not declare, and process.env only in src/common/env.ts', async () => {
    const { readdirSync, statSync } = await import('node:fs');
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    const src = join(__dirname, '..', 'src');
    walk(src);
    const declared = new Set(ENV_VARS.map((v) => v.name));
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\benv\??\.([A-Z][A-Z0-9_]+)\b/g))
        expect(declared.has(m[1]!), `${f}: ${m[1]} is not in ENV_VARS`).toBe(true);
      if (!f.endsWith(join('common', 'env.ts'))) {
        // spreading process.env into a child's environment is env.ts's childEnv(); reading it elsewhere is not allowed
        expect(/process\.env\b/.test(text.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '')), `${f} reads process.env`).toBe(
          false,
        );
      }
    }
  });

  it('the addon and the build read no WHALE_* variable it does not declare', async () => {
    const { readdirSync, statSync } = await import('node:fs');
    const root = join(__dirname, '..');
    const declared = new Set(ENV_VARS.map((v) => v.name));
    const seen = new Set<string>();
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(cc|cpp|h|cu|cuh)$/.test(p))
          for (const m of readFileSync(p, 'utf8').matchAll(/getenv\("(WHALE_[A-Z0-9_]+)"\)/g)) seen.add(m[1]!);
      }
    };
    walk(join(root, 'native'));
    walk(join(root, 'bindings'));
    for (const m of readFileSync(join(root, 'scripts', 'build-native.mjs'), 'utf8').matchAll(
      /\benv\.([A-Z][A-Z0-9_]+)/g,
    ))
      seen.add(m[1]!);
    expect(seen.size).toBeGreaterThan(5);
    for (const name of seen) expect(declared.has(name), `${name} is read but not in ENV_VARS`).toBe(true);
  });

  it('parses KAFKA_BROKERS one way and reads lazily', () => {
    expect(parseList(' a:9092, ,b:9092 ,')).toEqual(['a:9092', 'b:9092']);
    expect(readEnv({ KAFKA_BROKERS: '' }).kafkaBrokers).toEqual([]);
    const source: Record<string, string | undefined> = {};
    const e = readEnv(source);
    expect(e.redisUrl).toBeUndefined();
    source.REDIS_URL = 'redis://x';
    source.WHALE_REQUIRE_GPU = '1';
    expect(e.redisUrl).toBe('redis://x');
    expect(e.requireGpu).toBe(true);
    expect(readEnv({ WHALE_HTTP_PORT: '8081' }).httpPort).toBe(8081);
    expect(() => readEnv({ WHALE_HTTP_PORT: 'x' }).httpPort).toThrow(
      "WHALE_HTTP_PORT: must be a port number 0-65535, got 'x'",
    );
  });
});
