#!/usr/bin/env bash
# One benchmark run on the local real broker: the router (or the plain pipe baseline) between the
# FL simulator and the open-loop load generator, all release builds, one FL.
#   scripts/bench.sh router|pipe RATE DURATION [SWITCHES]
# Prints the load's summary and trace lines; writes out/bench-<mode>-<rate>.{json,svg} and the logs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mode="${1:?router|pipe}"; rate="${2:?rate}"; duration="${3:?duration}"; switches="${4:-100}"
export KAFKA_PORT="${KAFKA_PORT:-19092}"
mkdir -p out
cargo build --release --locked -q --workspace
bin="$ROOT/target/release/fl-router"          # the service
tools="$ROOT/target/release/fl-router-tools"  # pipe, simulator, load

started=0
if ! scripts/kafka.sh status 2>/dev/null; then scripts/kafka.sh start; started=1; fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$started" = 1 ]; then scripts/kafka.sh stop; fi
}
trap cleanup EXIT

id="b$(date +%s)$RANDOM"
cfg="out/bench-$id.yaml"
cat >"$cfg" <<YAML
kafka:
  brokers: 127.0.0.1:$KAFKA_PORT
  group_id: $id
topics:
  commands: [$id.commands]
  fl_read: $id.speaker_{fl}
  fl_write: $id.disco_{fl}
  events: $id.events
  default_reply: $id.northbound
  dead_letter: $id.dead
fls: [{id: fl1}]
sim: {switches_per_fl: $switches, answer_delay: 0s}
load: {rate: $rate, grace: 15s, reply_topic: $id.reply}
YAML

wait_for() { # file pattern count
  for _ in $(seq 1 600); do
    [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "bench: timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; exit 1
}

if [ "$mode" = router ]; then
  "$bin" -c "$cfg" 2>"out/bench-$id-router.log" & pids+=($!)
  wait_for "out/bench-$id-router.log" "router ready" 1
else
  "$tools" -c "$cfg" pipe 2>"out/bench-$id-pipe.log" & pids+=($!)
  wait_for "out/bench-$id-pipe.log" "pipe consumer assigned" 2
fi
"$tools" -c "$cfg" sim 2>"out/bench-$id-sim.log" & pids+=($!)
wait_for "out/bench-$id-sim.log" "FL simulator started" 1
sleep 2 # let the router read the simulator's switch events (this is a benchmark, not a test)

"$tools" -c "$cfg" --duration "$duration" load \
  --report "out/bench-$mode-$rate.json" --plot "out/bench-$mode-$rate.svg" 2>"out/bench-$id-load.log" \
  | tee "out/bench-$mode-$rate.txt" | grep -E "^(summary|trace):"
