#!/usr/bin/env bash
# The Kafka Streams baseline of the benchmarks (tools/kstreams/Route.java), for
# `fl-router-tools bench --baseline kstreams`; not needed by the tests.
#
#   scripts/kstreams.sh build   resolve Kafka Streams from Maven Central into .cache/kstreams/lib
#                               and compile Route.java into .cache/kstreams/classes
#
# Environment: KSTREAMS_VERSION (default 3.9.1, the broker's), KSTREAMS_CACHE (default
# <repo>/.cache/kstreams-<version>; the bench's --kstreams-cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KSTREAMS_VERSION:-3.9.1}"
CACHE="${KSTREAMS_CACHE:-$ROOT/.cache/kstreams-$VERSION}"
SRC="$ROOT/tools/kstreams"

log() { echo "kstreams.sh: $*" >&2; }

build() {
  command -v mvn >/dev/null || { log "mvn not found (install Maven: apt-get install -y maven)"; exit 1; }
  command -v javac >/dev/null || { log "javac not found (install a JDK 17: apt-get install -y openjdk-17-jdk-headless)"; exit 1; }
  if [ ! -f "$CACHE/lib/.complete" ]; then
    log "resolving Kafka Streams $VERSION from Maven Central into $CACHE/lib"
    mkdir -p "$CACHE/lib"
    mvn -q -B -f "$SRC/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$VERSION" -DincludeScope=runtime -DoutputDirectory="$CACHE/lib"
    touch "$CACHE/lib/.complete"
  fi
  mkdir -p "$CACHE/classes"
  javac -d "$CACHE/classes" -cp "$CACHE/lib/*" "$SRC/Route.java"
  cp "$SRC/log4j.properties" "$CACHE/classes/"
  log "built $CACHE/classes/Route.class"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
