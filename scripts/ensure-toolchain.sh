#!/usr/bin/env bash
# The TEST path's installer (npm test and .ci/run call it; npm install never does: its `prepare`
# only checks the build toolchain, scripts/check-toolchain.mjs). Installs what the build and the
# tests need when it is missing (Debian; root or sudo):
# cmake + g++ for the addon, redis-server for the cache tests, librdkafka-dev for the
# mock Kafka cluster the transport tests run against, chromium for the dashboard's browser test,
# clang-format for the C++ format check of npm run lint, openssl for the certificates of the TLS tests,
# libboost-context-dev for the fibers of the CUDA emulation that runs the .cu kernels in ctest (native/cuemu).
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || missing+=(make)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/librdkafka/rdkafka_mock.h ] || missing+=(librdkafka-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v clang-format >/dev/null 2>&1 || missing+=(clang-format)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -f /usr/include/boost/context/fiber.hpp ] || missing+=(libboost-context-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "whale: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
