#!/usr/bin/env node
// Builds the native addon (and its C++ unit tests) with cmake-js into build/.
// Environment:
//   WHALE_CUDA=off              build the CPU path only even when nvcc is present
//   WHALE_CUDA_ARCHITECTURES    e.g. "90" (default "80;90")
//   WHALE_SANITIZE=1            ASan + UBSan build (for the test suite)
//   WHALE_BUILD_TYPE            Release (default) or Debug
// Extra arguments are passed to cmake-js (e.g. --CDFOO=BAR).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cli = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');

const env = process.env;
const args = ['compile', '--directory', root, '--out', join(root, 'build')];
if (env.WHALE_BUILD_TYPE === 'Debug') args.push('--debug');
if (/^(0|off|false|no)$/i.test(env.WHALE_CUDA ?? '')) args.push('--CDWHALE_WITH_CUDA=OFF');
if (env.WHALE_CUDA_ARCHITECTURES) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${env.WHALE_CUDA_ARCHITECTURES}`);
if (env.WHALE_SANITIZE === '1') args.push('--CDWHALE_SANITIZE=ON');
args.push(...process.argv.slice(2));

// An optional package that the first configure found missing (Boost.Context, for the ctest of the CUDA
// kernels, before scripts/ensure-toolchain.sh installed it) is searched for again: `cmake-js compile`
// alone does not re-run the configure step of an existing build directory.
const cache = join(root, 'build', 'CMakeCache.txt');
if (existsSync(cache) && /^boost_context_DIR:PATH=.*-NOTFOUND$/m.test(readFileSync(cache, 'utf8'))) {
  spawnSync('cmake', [join(root, 'build')], { stdio: 'ignore', cwd: root });
}

const jobs = env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(Math.max(1, (await import('node:os')).availableParallelism()));
const res = spawnSync(process.execPath, [cli, ...args], {
  stdio: 'inherit',
  cwd: root,
  env: { ...env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
});
if (res.status !== 0) {
  console.error(
    '\nwhale: the native build failed. It needs cmake >= 3.18 and a C++17 compiler ' +
      '(Debian: apt-get install cmake g++). CUDA is optional (set WHALE_CUDA=off to skip it).',
  );
  process.exit(res.status ?? 1);
}
