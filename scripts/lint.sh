#!/usr/bin/env bash
# npm run lint (also run by scripts/test.sh before the tests): ESLint (recommended rules and the
# layer boundaries of src/, eslint.config.js), prettier --check (.prettierrc) and clang-format
# for native/ and bindings/ (.clang-format). Runs all three and fails if any failed.
# `npm run format` applies prettier and clang-format.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
echo "== lint: eslint"
npm run --silent lint:eslint || status=1
echo "== lint: prettier --check"
npx --no-install prettier --check --cache --log-level warn . || {
  echo "prettier: the files above differ from .prettierrc; 'npm run format' rewrites them" >&2
  status=1
}
echo "== lint: clang-format"
bash scripts/clang-format.sh --check || status=1
exit $status
