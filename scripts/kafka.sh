#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, loopback) for tests and local runs.
#
#   scripts/kafka.sh fetch   resolve the broker jars from Maven Central into .cache/kafka/lib
#   scripts/kafka.sh start   fetch if needed, format, start in the background, wait until it serves metadata
#   scripts/kafka.sh stop    stop the broker started by `start` and remove its data
#   scripts/kafka.sh status  exit 0 when the broker answers metadata requests
#
# A three-node cluster for failover tests (KRaft, each node broker and controller, replication
# 3, min.insync.replicas 2, short broker session timeout so a killed leader is replaced fast):
#   scripts/kafka.sh cluster-start | cluster-stop | cluster-status
#   scripts/kafka.sh node-kill N     SIGKILL node N (1..3)
#   scripts/kafka.sh node-start N    start node N again (same data)
# Nodes listen on 127.0.0.1:CLUSTER_PORT+100*(N-1) (default 29092, 29192, 29292), controllers
# one port above each.
#
# Environment: KAFKA_PORT (default 19092: below Linux's ephemeral port range, so no client
# connection can be holding it), KAFKA_CONTROLLER_PORT (default KAFKA_PORT+1),
# KAFKA_CACHE (default <repo>/.cache/kafka), KAFKA_START_TIMEOUT seconds (default 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KAFKA_CACHE:-$ROOT/.cache/kafka}"
LIB="$CACHE/lib"
PORT="${KAFKA_PORT:-19092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
RUN="$CACHE/run-$PORT"
PIDFILE="$RUN/broker.pid"
TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-29092}"
CLUSTER_RUN="$CACHE/cluster-$CLUSTER_PORT"

log() { echo "kafka.sh: $*" >&2; }

fetch() {
  if [ -f "$LIB/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found (install Maven: apt-get install -y maven)"; exit 1; }
  command -v java >/dev/null || { log "java not found (install a JDK 17: apt-get install -y openjdk-17-jdk-headless)"; exit 1; }
  log "resolving Apache Kafka from Maven Central into $LIB"
  mkdir -p "$LIB"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB"
  touch "$LIB/.complete"
}

kafka_java() { java -cp "$LIB/*" "$@"; }

# A real metadata round trip (list topics) against $1, not just an open port; logs under $2.
list_topics() {
  timeout 30 java -Xmx128m -cp "$LIB/*" -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" \
    -Dkafka.logs.dir="$2" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$1" --list >/dev/null 2>&1
}

status() { list_topics "127.0.0.1:$PORT" "$RUN"; }

start() {
  fetch
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "broker already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  rm -rf "$RUN"
  mkdir -p "$RUN/data"
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  local cid
  cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  kafka_java -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" -Dkafka.logs.dir="$RUN" \
    kafka.tools.StorageTool format -t "$cid" -c "$RUN/server.properties" >"$RUN/format.log" 2>&1
  log "starting broker on 127.0.0.1:$PORT (data $RUN)"
  nohup java -Xms256m -Xmx512m -cp "$LIB/*" \
    -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" -Dkafka.logs.dir="$RUN" \
    kafka.Kafka "$RUN/server.properties" >"$RUN/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  local waited=0
  until status; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "broker exited during start-up; last log lines:"; tail -n 30 "$RUN/stdout.log" "$RUN/server.log" >&2 || true
      exit 1
    fi
    waited=$((waited + 2))
    if [ "$waited" -ge "$TIMEOUT" ]; then log "broker not ready after ${TIMEOUT}s"; stop; exit 1; fi
    sleep 2
  done
  log "broker ready on 127.0.0.1:$PORT"
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "broker on port $PORT stopped"
  fi
  rm -rf "$RUN"
}

node_port() { echo $((CLUSTER_PORT + 100 * ($1 - 1))); }

cluster_bootstrap() {
  echo "127.0.0.1:$(node_port 1),127.0.0.1:$(node_port 2),127.0.0.1:$(node_port 3)"
}

node_start() {
  local n="$1" port dir
  port="$(node_port "$n")"
  dir="$CLUSTER_RUN/node$n"
  nohup java -Xms256m -Xmx384m -cp "$LIB/*" \
    -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" -Dkafka.logs.dir="$dir" \
    kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/pid"
  log "node $n starting on 127.0.0.1:$port"
}

node_kill() {
  local pidfile="$CLUSTER_RUN/node$1/pid"
  if [ -f "$pidfile" ]; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  log "node $1 killed"
}

cluster_status() { list_topics "$(cluster_bootstrap)" "$CLUSTER_RUN"; }

cluster_start() {
  fetch
  rm -rf "$CLUSTER_RUN"
  mkdir -p "$CLUSTER_RUN"
  local voters="" n cid
  for n in 1 2 3; do voters="$voters${voters:+,}$n@127.0.0.1:$(( $(node_port "$n") + 1 ))"; done
  cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  for n in 1 2 3; do
    local port dir
    port="$(node_port "$n")"
    dir="$CLUSTER_RUN/node$n"
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
replica.lag.time.max.ms=3000
PROPS
    kafka_java -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" -Dkafka.logs.dir="$dir" \
      kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" >"$dir/format.log" 2>&1
  done
  for n in 1 2 3; do node_start "$n"; done
  local waited=0
  until cluster_status; do
    waited=$((waited + 2))
    if [ "$waited" -ge "$TIMEOUT" ]; then log "cluster not ready after ${TIMEOUT}s"; cluster_stop; exit 1; fi
    sleep 2
  done
  log "cluster ready on $(cluster_bootstrap)"
}

cluster_stop() {
  for n in 1 2 3; do
    local pidfile="$CLUSTER_RUN/node$n/pid"
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  sleep 2
  for n in 1 2 3; do node_kill "$n" >/dev/null 2>&1; done
  rm -rf "$CLUSTER_RUN"
  log "cluster stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  cluster-start) cluster_start ;;
  cluster-stop) cluster_stop ;;
  cluster-status) cluster_status ;;
  cluster-bootstrap) cluster_bootstrap ;;
  node-kill) node_kill "${2:?node 1..3}" ;;
  node-start) node_start "${2:?node 1..3}" ;;
  *) echo "usage: $0 fetch|start|stop|status|cluster-start|cluster-stop|cluster-status|cluster-bootstrap|node-kill N|node-start N" >&2; exit 2 ;;
esac
