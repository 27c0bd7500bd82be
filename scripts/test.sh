#!/usr/bin/env bash
# The project's test command: starts the local Kafka broker (unless one is already serving on
# KAFKA_PORT), runs every test of the workspace, stops the broker it started, and ends with one
# line `tests: N passed, N failed`.
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KAFKA_PORT="${KAFKA_PORT:-19092}"
export FLROUTER_TEST_BROKERS="${FLROUTER_TEST_BROKERS:-127.0.0.1:$KAFKA_PORT}"
start=$(date +%s)
scripts/deps.sh

started=0
if ! scripts/kafka.sh status 2>/dev/null; then
  scripts/kafka.sh start
  started=1
fi
out="$(mktemp)"
cleanup() {
  if [ "$started" = 1 ]; then scripts/kafka.sh stop; started=0; fi
}
trap 'cleanup; rm -f "$out"' EXIT
trap 'exit 130' INT TERM

rc=0
cargo test --workspace --locked "$@" 2>&1 | tee "$out" || rc=$?
cleanup

passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$out" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$out" | awk '{s+=$1} END {print s+0}')
echo "took $(( $(date +%s) - start ))s"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # build error or crash
echo "tests: $passed passed, $failed failed"
exit "$rc"
