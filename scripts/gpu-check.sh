#!/usr/bin/env bash
# One-command GPU verification (npm run gpu:check): on a machine with an NVIDIA
# GPU, builds the addon with CUDA, runs the native tests and `test:gpu` (every
# CUDA kernel against the CPU path), then the aggregate and quant benches with
# their GPU columns, and writes bench/gpu-check.json and bench/gpu-check.md.
#
# Machines without Node or network (the lent device machine): on the
# development machine first run
#   scripts/gpu-check.sh --pack
# which writes .device/ (ignored by git): node (xz), its headers, and the
# node_modules the check needs (vitest, node-addon-api); build dist/ too
# (npm run build:ts). Carry .device and dist there, then run
#   bash scripts/gpu-check.sh
# Options: --pack, --skip-bench, --runs N (bench runs, default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=$root/.device
runs=5
skip_bench=0

log() { printf '== gpu-check: %s\n' "$*" >&2; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }

pack() {
  command -v node >/dev/null || die "--pack needs node on this machine"
  command -v xz >/dev/null || die "--pack needs xz (apt-get install xz-utils)"
  mkdir -p "$dev"
  log "packing node ($(node --version)) into .device/node.xz"
  xz -T2 -6 -c "$(command -v node)" >"$dev/node.xz"
  local headers
  headers=$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")
  [ -f "$headers/node_api.h" ] || headers=/usr/include/node
  [ -f "$headers/node_api.h" ] || die "no Node headers found (node_api.h)"
  log "packing Node headers from $headers"
  tar -C "$(dirname "$headers")" -cJf "$dev/node-headers.tar.xz" node
  log "packing node_modules for vitest and node-addon-api"
  node -e '
    const fs = require("fs");
    const seen = new Set(), queue = ["vitest", "node-addon-api"];
    while (queue.length) {
      const name = queue.pop();
      if (seen.has(name)) continue;
      let pj;
      try { pj = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")); } catch { continue; }
      seen.add(name);
      for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) queue.push(d);
    }
    fs.writeFileSync(process.argv[1], [...seen].map((n) => `node_modules/${n}`).join("\n") + "\n");
  ' "$dev/modules.txt"
  [ -d node_modules/.bin ] && echo node_modules/.bin >>"$dev/modules.txt"
  tar -cJf "$dev/node_modules.tar.xz" -T "$dev/modules.txt"
  du -sh "$dev"/*.xz >&2
  [ -d dist/bench ] || log "dist/ is missing: run npm run build:ts before carrying it"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --pack) pack; exit 0 ;;
    --skip-bench) skip_bench=1 ;;
    --runs) runs=$2; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

# Node: from PATH, or unpacked from .device/.
if ! command -v node >/dev/null; then
  [ -f "$dev/node.xz" ] || die "node is not installed and .device/node.xz is missing (run scripts/gpu-check.sh --pack where node is)"
  mkdir -p "$dev/bin"
  [ -x "$dev/bin/node" ] || { xz -dc "$dev/node.xz" >"$dev/bin/node"; chmod +x "$dev/bin/node"; }
  export PATH="$dev/bin:$PATH"
fi
if [ ! -d node_modules/vitest ] && [ -f "$dev/node_modules.tar.xz" ]; then
  log "unpacking node_modules"
  tar -xJf "$dev/node_modules.tar.xz"
fi
[ -d node_modules/vitest ] || die "node_modules/vitest is missing (npm install, or carry .device from --pack)"
[ -d dist/bench ] || die "dist/ is missing (npm run build:ts here, or carry it)"

# The GPU.
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
gpu=$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader | head -1)
[ -n "$gpu" ] || die "nvidia-smi lists no GPU"
arch=${WHALE_CUDA_ARCHITECTURES:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')}
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "nvcc not found"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
log "GPU: $gpu; building for sm_$arch"

# Build: cmake directly (cmake-js would download Node headers); the addon goes
# where the loader looks (build/Release).
headers=""
for h in "$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")" /usr/include/node "$dev/headers/node"; do
  [ -f "$h/node_api.h" ] && { headers=$h; break; }
done
if [ -z "$headers" ] && [ -f "$dev/node-headers.tar.xz" ]; then
  mkdir -p "$dev/headers" && tar -C "$dev/headers" -xJf "$dev/node-headers.tar.xz"
  headers=$dev/headers/node
fi
[ -n "$headers" ] || die "no Node headers (node_api.h); run --pack where node is"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWHALE_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCMAKE_JS_INC="$headers" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$root/build/Release" >build-gpu-check.log 2>&1 ||
  { tail -30 build-gpu-check.log; die "cmake configure failed"; }
grep -q "CUDA kernels ON" build-gpu-check.log || { tail -30 build-gpu-check.log; die "CMake did not enable CUDA"; }
cmake --build build -j "$(nproc)" >>build-gpu-check.log 2>&1 || { tail -40 build-gpu-check.log; die "build failed"; }

log "native unit tests (ctest)"
ctest --test-dir build --output-on-failure
node bin/whale.js info

log "test:gpu (CUDA kernels against the CPU path)"
WHALE_GPU_TESTS=1 node node_modules/vitest/vitest.mjs run test/gpu

[ "$skip_bench" = 1 ] && exit 0
log "benches (aggregate, quant) with GPU columns"
node --expose-gc --input-type=module - "$runs" "$gpu" <<'EOF'
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchAggregate } from './dist/bench/aggregate.js';
import { benchQuant } from './dist/bench/quant.js';
import { engine } from './dist/src/native/engine.js';

const runs = Number(process.argv[2]);
const gpu = process.argv[3];
const date = new Date().toISOString();
const build = engine.build();
const aggregate = await benchAggregate({ runs, quick: false, referenceLimit: 1e7 });
const quant = await benchQuant({ runs, quick: false });
const cpu = cpus()[0]?.model ?? 'unknown CPU';
writeFileSync('bench/gpu-check.json', JSON.stringify({ date, gpu, cpu, build, aggregate: { ...aggregate, text: undefined }, quant: { ...quant, text: undefined } }, null, 2));
const md = [
  `# GPU check (${date})`,
  '',
  `GPU: ${gpu} (nvidia-smi: name, compute capability, memory, driver). CPU: ${cpu}, ${build.threads} threads.`,
  `Command: \`bash scripts/gpu-check.sh --runs ${runs}\` (build with CUDA, ctest, test:gpu, then these benches).`,
  '',
  '## npm run bench -- aggregate',
  '',
  '```',
  aggregate.text,
  '```',
  '',
  '## npm run bench -- quant',
  '',
  '```',
  quant.text,
  '```',
  '',
].join('\n');
writeFileSync('bench/gpu-check.md', md);
process.stdout.write(md);
EOF
log "wrote bench/gpu-check.json and bench/gpu-check.md"
