#!/usr/bin/env bash
# The test command (npm test): lints (npm run lint), builds what is stale, runs the native unit
# tests (ctest) and the vitest suite. Adds test/gpu/ when a CUDA device is usable.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-toolchain.sh
# eslint (with the layer boundaries of src/), prettier --check, clang-format --check: a few seconds.
npm run --silent lint
npm run --silent build:ts
npm run --silent build:native >/tmp/whale-build-native.log 2>&1 || {
  cat /tmp/whale-build-native.log
  exit 1
}

bash scripts/kafka-mock/build.sh

echo "== native unit tests (ctest)"
ctest --test-dir build --output-on-failure

if node bin/whale.js info --json | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    process.exit(JSON.parse(s).devices.some((d) => d.kind === "cuda") ? 0 : 1);
  });'; then
  echo "== CUDA device found: including test/gpu/"
  export WHALE_GPU_TESTS=1
fi

echo "== vitest"
npx vitest run "$@"
