// ESLint rule `whale/layers`: the import boundaries of src/ (README "Architecture", issue 19).
// Each folder directly under src/ is a layer; a module may import only from the layers listed for its own.
// Relative specifiers are resolved against the importing file, so `../../server/x.js` from src/core/a/b.ts
// and `../config.js` (a file of the same layer) are told apart; other packages are not checked, but the
// package's own name (`smart-whale-core/...`, option selfName) is refused: it would bypass the layers.
// Checked: import/export ... from, import(), `import x = require()`, `typeof import()` types (type-only
// imports point up just as much). A file in a folder missing from the table is reported, so a new layer
// cannot slip past the rule.
import path from 'node:path';

/** Layer → the layers it may import (itself included). Files directly in src/ (entry points) may import any. */
export const LAYERS = {
  common: ['common'],
  native: ['native', 'common'],
  transport: ['transport', 'native', 'common'],
  core: ['core', 'transport', 'native', 'common'],
  models: ['models', 'core', 'transport', 'native', 'common'],
  services: ['services', 'models', 'core', 'transport', 'native', 'common'],
  apps: ['apps', 'services', 'models', 'core', 'transport', 'native', 'common'],
  config: ['config', 'apps', 'services', 'models', 'core', 'transport', 'native', 'common'],
  server: ['server', 'config', 'apps', 'services', 'models', 'core', 'transport', 'native', 'common'],
  cli: ['cli', 'server', 'config', 'apps', 'services', 'models', 'core', 'transport', 'native', 'common'],
  // The package's subpath entries (smart-whale-core/<area>): they re-export from any layer, nothing imports them.
  entry: ['entry', 'cli', 'server', 'config', 'apps', 'services', 'models', 'core', 'transport', 'native', 'common'],
};

/** The layer of an absolute path: its first folder under `srcRoot`; '' for a file directly in src/, null outside. */
function layerOf(srcRoot, file) {
  const rel = path.relative(srcRoot, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  return parts.length === 1 ? '' : parts[0];
}

/** @type {import('eslint').Rule.RuleModule} */
export const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Imports in src/ only point down the layers (core never imports server, cli, config, ...)' },
    schema: [
      {
        type: 'object',
        properties: { srcRoot: { type: 'string' }, selfName: { type: 'string' } },
        required: ['srcRoot'],
        additionalProperties: false,
      },
    ],
    messages: {
      upward: "src/{{from}} may not import from src/{{to}} ('{{spec}}'): allowed are {{allowed}}",
      unknown: 'src/{{from}} is not in the layer table of tools/lint/layers.js: add it there',
      self: "src/ may not import the package by its own name ('{{spec}}'): use a relative path",
    },
  },
  create(context) {
    const srcRoot = path.resolve(context.options[0].srcRoot);
    const selfName = context.options[0].selfName;
    const filename = context.physicalFilename ?? context.filename;
    const from = layerOf(srcRoot, path.resolve(filename));
    if (from === null || from === '') return {};
    const allowed = LAYERS[from];
    if (!allowed) {
      return {
        Program(node) {
          context.report({ node, messageId: 'unknown', data: { from } });
        },
      };
    }
    function check(source) {
      if (!source) return;
      let spec;
      if (source.type === 'Literal' && typeof source.value === 'string') spec = source.value;
      else if (source.type === 'TemplateLiteral' && source.expressions.length === 0)
        spec = source.quasis[0].value.cooked;
      else return;
      if (selfName && (spec === selfName || spec.startsWith(`${selfName}/`))) {
        context.report({ node: source, messageId: 'self', data: { spec } });
        return;
      }
      if (!spec.startsWith('.') && !path.isAbsolute(spec)) return;
      const to = layerOf(srcRoot, path.resolve(path.dirname(filename), spec));
      if (to === null || to === '' || allowed.includes(to)) return;
      context.report({
        node: source,
        messageId: 'upward',
        data: { from, to, spec, allowed: allowed.map((l) => `src/${l}`).join(', ') },
      });
    }
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSImportEqualsDeclaration: (node) => {
        if (node.moduleReference.type === 'TSExternalModuleReference') check(node.moduleReference.expression);
      },
      TSImportType: (node) => {
        // typescript-eslint 8.x: `source` (a string literal); older 8.x: `argument`, a TSLiteralType around it.
        if (node.source) return check(node.source);
        const arg = node.argument;
        check(arg && arg.type === 'TSLiteralType' ? arg.literal : arg);
      },
    };
  },
};

export default { rules: { layers: layersRule } };
