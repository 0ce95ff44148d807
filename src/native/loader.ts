/**
 * The one loader of the native addon. It tries each known build location,
 * collects every failure and throws one WhaleError that says what was tried,
 * why each failed and how to fix it. Tests may inject a binding.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readEnv, type EnvSource } from '../common/env.js';
import { WhaleError, type WhaleErrorCode } from '../common/errors.js';
import type { NativeBinding } from './binding.js';

const ADDON_FILE = 'whale_native.node';
const require = createRequire(import.meta.url);

let injected: NativeBinding | undefined;
let loaded: NativeBinding | undefined;
let loadedFrom: string | undefined;

/** Directory of this package (the one holding our package.json). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name;
      if (name === 'smart-whale-core') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new WhaleError('ERR_NATIVE_NOT_FOUND', 'cannot find the smart-whale-core package root');
    dir = parent;
  }
}

/** Where the addon may be, in order: $WHALE_NATIVE_PATH, the cmake-js build outputs, the packed prebuilt. */
export function candidatePaths(source?: EnvSource): string[] {
  const nativePath = readEnv(source).nativePath;
  const root = packageRoot();
  const paths = [
    join(root, 'build', 'Release', ADDON_FILE),
    join(root, 'build', 'Debug', ADDON_FILE),
    join(root, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_FILE),
  ];
  return nativePath ? [nativePath, ...paths] : paths;
}

export interface LoadAttempt {
  path: string;
  error: string;
}

export function loadNativeFrom(paths: readonly string[]): { binding: NativeBinding; path: string } {
  const attempts: LoadAttempt[] = [];
  for (const path of paths) {
    if (!existsSync(path)) {
      attempts.push({ path, error: 'file not found' });
      continue;
    }
    try {
      return { binding: require(path) as NativeBinding, path };
    } catch (err) {
      attempts.push({ path, error: err instanceof Error ? err.message : String(err) });
    }
  }
  const anyPresent = attempts.some((a) => a.error !== 'file not found');
  const code: WhaleErrorCode = anyPresent ? 'ERR_NATIVE_LOAD' : 'ERR_NATIVE_NOT_FOUND';
  const lines = attempts.map((a) => `  - ${a.path}: ${a.error}`).join('\n');
  throw new WhaleError(
    code,
    `the native engine (${ADDON_FILE}) could not be loaded. Tried:\n${lines}\n` +
      `Fix: run \`npm run build:native\` (needs cmake and a C++17 compiler), ` +
      `or point WHALE_NATIVE_PATH at a built ${ADDON_FILE}.`,
    { attempts },
  );
}

/** The native binding: the injected one if any, else the addon, loaded once. */
export function native(): NativeBinding {
  if (injected) return injected;
  if (!loaded) {
    const { binding, path } = loadNativeFrom(candidatePaths());
    loaded = binding;
    loadedFrom = path;
  }
  return loaded;
}

/** Path the addon was loaded from, or undefined before the first load / when injected. */
export function nativePath(): string | undefined {
  return injected ? undefined : loadedFrom;
}

/** Replace the binding (tests); pass undefined to restore the real addon. */
export function injectNative(binding: NativeBinding | undefined): void {
  injected = binding;
}
