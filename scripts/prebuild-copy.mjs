#!/usr/bin/env node
// prepack: ships the addon built here as prebuilds/<platform>-<arch>/whale_native.node, so a
// project installing the packed tarball needs no compiler (npm >= 11 also skips dependencies'
// install scripts unless the user approves them). scripts/install-native.mjs builds from source
// on platforms without a prebuilt.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'build', 'Release', 'whale_native.node');
if (!existsSync(built)) {
  console.error('whale: no build/Release/whale_native.node to ship; run `npm run build:native` before packing');
  process.exit(1);
}
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
copyFileSync(built, join(dir, 'whale_native.node'));
console.log(`whale: packed the addon as prebuilds/${process.platform}-${process.arch}/whale_native.node`);
