#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack, from Debian's packages:
# a JDK and Maven (the Kafka broker), Chromium (the dashboard test), a C toolchain (librdkafka),
# adduser (the Debian package's postinst).
# Installs nothing when everything is there. Needs root (or sudo) only when it installs something.
set -euo pipefail
# The OpenKilda oracle (OpenKilda's own classes, used by the OpenKilda tests) fetches its Maven
# Central jars once; done here so a missing registry fails the set-up, not a test.
fetch_oracle() {
  local oracle="${FLROUTER_ORACLE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/openkilda-oracle}"
  if [ ! -x "$oracle/run.sh" ] && [ ! -f "$oracle/run.sh" ]; then
    echo "deps.sh: the OpenKilda oracle is not at $oracle (set FLROUTER_ORACLE)" >&2
    return 1
  fi
  bash "$oracle/run.sh" --fetch >/dev/null
}
need=()
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(gcc g++)
command -v chromium >/dev/null || need+=(chromium)
# The Debian package's test (as root) installs it with dpkg, whose postinst needs adduser.
command -v adduser >/dev/null || need+=(adduser)
if [ ${#need[@]} -eq 0 ]; then fetch_oracle; exit 0; fi
echo "deps.sh: installing ${need[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fetch_oracle
