// The layer boundaries of src/ (eslint.config.js → tools/lint/layers.js) must keep failing on a
// violation: the fixtures under test/fixtures/lint/ are linted through the project's own ESLint config
// as if they lived in src/, so a config change that drops the rule (or stops applying it to src/) fails here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

import { LAYERS } from '../tools/lint/layers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = (name: string) => readFileSync(path.join(root, 'test/fixtures/lint', name), 'utf8');
const eslint = new ESLint({ cwd: root });

/** Lints `code` as if it were the file `rel` (relative to the repository root); returns the layer findings. */
async function layerFindings(code: string, rel: string) {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, rel) });
  expect(result!.fatalErrorCount).toBe(0);
  return result!.messages.filter((m) => m.ruleId === 'whale/layers');
}

describe('lint: layer boundaries', () => {
  it('fails on core importing server, config, cli, apps and models (static, type, re-export, dynamic, typeof import)', async () => {
    const found = await layerFindings(fixture('core-imports-server.ts'), 'src/core/federation/routing/fixture.ts');
    expect(found.map((m) => [m.line, m.message.match(/may not import from (src\/\w+)/)?.[1]])).toEqual([
      [3, 'src/server'],
      [4, 'src/config'],
      [6, 'src/cli'],
      [9, 'src/apps'],
      [10, 'src/models'],
    ]);
    for (const m of found) expect(m.severity).toBe(2);
  });

  it('passes on core importing core, transport, native, common and packages', async () => {
    expect(await layerFindings(fixture('core-legal.ts'), 'src/core/federation/routing/fixture.ts')).toEqual([]);
  });

  it('the same violation is fine one layer up: server may import core and config', async () => {
    // src/server/extensions/fixture.ts: '../../../server/…' from src/core becomes '../whale-server.js' etc.
    const code =
      "import { WhaleServer } from '../whale-server.js';\nimport { x } from '../../core/base/index.js';\n" +
      "import { c } from '../../config/whale-config.js';\nexport const all = [WhaleServer, x, c];\n";
    expect(await layerFindings(code, 'src/server/extensions/fixture.ts')).toEqual([]);
    const up = await layerFindings("export { runCli } from '../../cli/main.js';\n", 'src/server/extensions/fixture.ts');
    expect(up).toHaveLength(1);
  });

  it("refuses the package's own name, which would bypass the layers", async () => {
    const found = await layerFindings(
      "import { WhaleServer } from 'smart-whale-core/serving';\nimport { x } from 'smart-whale-core';\nexport const all = [WhaleServer, x];\n",
      'src/core/fixture.ts',
    );
    expect(found.map((m) => m.messageId)).toEqual(['self', 'self']);
  });

  it('every layer is held to its table, and a folder missing from the table is reported', async () => {
    const all = Object.keys(LAYERS);
    for (const from of all) {
      for (const to of all) {
        const found = await layerFindings(`export { x } from '../${to}/mod.js';\n`, `src/${from}/fixture.ts`);
        expect({ from, to, flagged: found.length === 1 }).toEqual({
          from,
          to,
          flagged: !(LAYERS as Record<string, string[]>)[from]!.includes(to),
        });
      }
    }
    const unknown = await layerFindings('export const x = 1;\n', 'src/newlayer/fixture.ts');
    expect(unknown.map((m) => m.messageId)).toEqual(['unknown']);
  });

  it('the table encodes the layers of issue 19 and covers every folder of src/', () => {
    expect(LAYERS.core).toEqual(['core', 'transport', 'native', 'common']);
    expect(LAYERS.common).toEqual(['common']);
    for (const upper of ['services', 'server', 'cli', 'apps', 'config']) expect(LAYERS.models).not.toContain(upper);
    for (const layer of ['services', 'apps'])
      for (const upper of ['server', 'cli']) expect(LAYERS[layer as 'apps']).not.toContain(upper);
    expect(LAYERS.server).not.toContain('cli');
    const folders = readdirSync(path.join(root, 'src')).filter((f) =>
      statSync(path.join(root, 'src', f)).isDirectory(),
    );
    expect(folders.filter((f) => !(f in LAYERS))).toEqual([]);
  });

  it("src/core has no import from server, cli, config, models or apps (the issue's grep)", () => {
    const bad: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const file = path.join(dir, name);
        if (statSync(file).isDirectory()) walk(file);
        else if (
          name.endsWith('.ts') &&
          /from '(\.\.\/)+(server|cli|config|models|apps)\//.test(readFileSync(file, 'utf8'))
        )
          bad.push(path.relative(root, file));
      }
    };
    walk(path.join(root, 'src/core'));
    expect(bad).toEqual([]);
  });
});
