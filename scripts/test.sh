#!/usr/bin/env bash
# The project's test command, in two steps:
#  1. starts the local Kafka broker (unless one is already serving on KAFKA_PORT), runs every
#     test of the workspace, stops the broker it started;
#  2. the broker-failover step: stops nothing else, starts a three-node cluster
#     (scripts/kafka.sh cluster-start), runs tests/cluster.rs against it, stops it. Bounded by
#     FAILOVER_TIMEOUT seconds (default 600); FLROUTER_SKIP_FAILOVER=1 leaves it out.
#  Between them, while the broker still runs, the package step (root only): builds the Debian
#  package and installs, runs, upgrades and purges it (tests/package.rs);
#  FLROUTER_SKIP_PACKAGE=1 leaves it out.
# Ends with one line `tests: N passed, N failed` over both steps.
#   scripts/test.sh [extra cargo test args for step 1]
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

if [ "${FLROUTER_SKIP_PACKAGE:-0}" != 1 ]; then
  echo "== package step: the Debian package, installed with dpkg -i =="
  if [ "$(id -u)" = 0 ]; then
    timeout "${PACKAGE_TIMEOUT:-900}" cargo test --locked -p fl-router --test package -- --ignored 2>&1 \
      | tee -a "$out" || rc=$?
  else
    echo "package step: SKIPPED: it installs a package system-wide and needs root" \
      "(FLROUTER_SKIP_PACKAGE=1 leaves it out)" | tee -a "$out"
  fi
fi
cleanup

if [ "${FLROUTER_SKIP_FAILOVER:-0}" != 1 ]; then
  echo "== failover step: three-node Kafka cluster =="
  cluster_up=0
  stop_cluster() { if [ "$cluster_up" = 1 ]; then scripts/kafka.sh cluster-stop; cluster_up=0; fi; }
  trap 'cleanup; stop_cluster; rm -f "$out"' EXIT
  cluster_up=1
  if scripts/kafka.sh cluster-start; then
    FLROUTER_TEST_BROKERS="$(scripts/kafka.sh cluster-bootstrap)" FLROUTER_TEST_REPLICATION=3 \
      timeout "${FAILOVER_TIMEOUT:-600}" cargo test --locked -p fl-router --test cluster -- --ignored --test-threads=1 2>&1 \
      | tee -a "$out" || rc=$?
  else
    echo "failover step: the cluster did not start" | tee -a "$out"
    rc=1
  fi
  stop_cluster
fi

passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$out" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$out" | awk '{s+=$1} END {print s+0}')
echo "took $(( $(date +%s) - start ))s"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # build error or crash
echo "tests: $passed passed, $failed failed"
exit "$rc"
