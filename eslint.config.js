// ESLint (flat config): the recommended JavaScript and typescript-eslint rules (syntax only, not
// type-aware, so `npm run lint` stays fast) plus `whale/layers`, the import boundaries of src/
// (tools/lint/layers.js; test/lint.boundary.test.ts shows it fails on a violation). Formatting is
// prettier's job (.prettierrc), so no stylistic rules here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

import whale from './tools/lint/layers.js';

const root = path.dirname(fileURLToPath(import.meta.url));

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'build/', 'prebuilds/', 'models/', 'bench/results/', 'test/fixtures/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names are deliberately unused (callback signatures, destructuring to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { whale },
    rules: { 'whale/layers': ['error', { srcRoot: path.join(root, 'src'), selfName: 'smart-whale-core' }] },
  },
  {
    // Tests build arrays with holes on purpose (the code under test must name them).
    files: ['test/**/*.ts'],
    rules: { 'no-sparse-arrays': 'off' },
  },
  {
    // The dashboard's page script runs in the browser, with uPlot loaded by a <script> tag before it.
    files: ['src/core/monitoring/visualization/assets/**/*.js'],
    languageOptions: { globals: { ...globals.browser, uPlot: 'readonly' } },
  },
);
