#!/usr/bin/env bash
# The project's test command: starts the local Kafka broker (unless one is already serving on
# KAFKA_PORT), runs every test of the workspace, and stops the broker it started.
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KAFKA_PORT="${KAFKA_PORT:-39092}"
export FLROUTER_TEST_BROKERS="${FLROUTER_TEST_BROKERS:-127.0.0.1:$KAFKA_PORT}"

started=0
if ! scripts/kafka.sh status 2>/dev/null; then
  scripts/kafka.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then scripts/kafka.sh stop; fi; }
trap cleanup EXIT INT TERM

cargo test --workspace --locked "$@"
