#!/usr/bin/env bash
# clang-format over the C++/CUDA sources of native/ and bindings/ (style: .clang-format).
#   --check (default): list the files that differ and exit 1;  --fix: rewrite them in place.
# clang-format comes from Debian (scripts/ensure-toolchain.sh installs it); other major versions may
# format a few constructs differently, so the check reports which version it ran.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:---check}"
if ! command -v clang-format >/dev/null 2>&1; then
  echo "clang-format not found: run 'bash scripts/ensure-toolchain.sh' (Debian package clang-format)" >&2
  exit 1
fi
mapfile -t files < <(find native bindings -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' \
  -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' \) | LC_ALL=C sort)
case "$mode" in
  --fix)
    clang-format -i --style=file "${files[@]}"
    ;;
  --check)
    # One run over all files; --dry-run prints "<file>:<line>:<col>: error: code should be clang-formatted".
    out="$(clang-format --style=file --dry-run --Werror "${files[@]}" 2>&1)" && rc=0 || rc=$?
    mapfile -t bad < <(printf '%s\n' "$out" |
      sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | uniq)
    if [ $rc -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
      printf '%s\n' "$out" | head -n 5 >&2 # clang-format itself failed (e.g. a bad .clang-format)
      exit 1
    fi
    if [ ${#bad[@]} -gt 0 ]; then
      printf '%s\n' "${bad[@]}"
      echo "clang-format ($(clang-format --version | grep -o 'version [0-9.]*')): ${#bad[@]} of ${#files[@]} files" \
        "differ from .clang-format; 'npm run format' rewrites them" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: scripts/clang-format.sh [--check|--fix]" >&2
    exit 2
    ;;
esac
