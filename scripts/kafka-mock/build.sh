#!/usr/bin/env bash
# Builds the mock Kafka launcher into build/kafka-mock (installs librdkafka-dev when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -f /usr/include/librdkafka/rdkafka_mock.h ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq librdkafka-dev
fi
mkdir -p build
if [ ! -x build/kafka-mock ] || [ scripts/kafka-mock/kafka-mock.c -nt build/kafka-mock ]; then
  cc -O2 -Wall -Wextra -o build/kafka-mock scripts/kafka-mock/kafka-mock.c -lrdkafka
fi
