#!/usr/bin/env node
// install: in a project that depends on smart-whale-core, use the prebuilt addon for this
// platform when it loads, else build it from source (cmake-js; needs cmake and a C++17 compiler).
// In a checkout of the repository (tsconfig.json present) `prepare` builds everything instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(join(root, 'tsconfig.json'))) process.exit(0);

const require = createRequire(import.meta.url);
const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'whale_native.node');
if (existsSync(prebuilt)) {
  try {
    require(prebuilt);
    process.exit(0);
  } catch (err) {
    console.warn(`whale: the prebuilt addon does not load here (${err.message}); building from source`);
  }
}
const res = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', cwd: root });
if (res.status !== 0) {
  console.warn('whale: the native addon could not be built; smart-whale-core will say how to fix it when first used');
}
