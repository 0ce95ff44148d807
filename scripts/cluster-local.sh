#!/usr/bin/env bash
# The compose topology (deploy/docker-compose.yml) as local processes: see scripts/cluster-local.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/cluster-local.mjs "$@"
