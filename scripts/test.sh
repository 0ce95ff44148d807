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
if [ "$#" -gt 0 ]; then
  exec npx vitest run "$@"
fi
# The system tests start child processes (whale nodes, learners, the Kafka mock, a consumer project)
# and spend most of their time waiting (consumer-group rebalances, process start-up): they run in a
# second vitest beside the rest, and their report is printed after the main one. Within each run
# files still go one at a time (vitest.config.ts).
SYSTEM_TESTS=(
  test/system.two-node.test.ts
  test/federation.service.test.ts
  test/federation.custom-model.test.ts
  test/federation.e2e.test.ts
  test/federation.orphans.test.ts
  test/knowledge.kafka.test.ts
  test/cluster.local.test.ts
  test/package.consumer.test.ts
  test/cli.federate.config.test.ts
)
# Tests that measure the server's event-loop delay under attack: they run alone, after the two runs
# above, so another test's CPU use is not counted against the server.
QUIET_TESTS=(
  test/cli.start.attack.test.ts
)
for f in "${SYSTEM_TESTS[@]}" "${QUIET_TESTS[@]}"; do
  [ -f "$f" ] || { echo "scripts/test.sh: $f is listed as a system test but does not exist" >&2; exit 1; }
done
system_log=$(mktemp)
npx vitest run "${SYSTEM_TESTS[@]}" >"$system_log" 2>&1 &
system_pid=$!
main_status=0
npx vitest run $(printf -- '--exclude %s ' "${SYSTEM_TESTS[@]}" "${QUIET_TESTS[@]}") || main_status=$?
system_status=0
wait "$system_pid" || system_status=$?
echo "== vitest: system tests (ran beside the above)"
cat "$system_log"
rm -f "$system_log"
echo "== vitest: timing-sensitive tests, alone"
quiet_status=0
npx vitest run "${QUIET_TESTS[@]}" || quiet_status=$?
if [ "$main_status" -ne 0 ] || [ "$system_status" -ne 0 ] || [ "$quiet_status" -ne 0 ]; then
  echo "== vitest failed: main run exit $main_status, system tests exit $system_status, alone exit $quiet_status" >&2
  exit 1
fi
