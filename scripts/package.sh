#!/usr/bin/env bash
# Builds the Debian package (release build, metadata in Cargo.toml [package.metadata.deb],
# unit and maintainer script in deploy/debian/) and prints the .deb's path on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo-deb >/dev/null; then
  echo "package.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked --version "${CARGO_DEB_VERSION:-3.8.0}" >&2
fi
cargo deb -p fl-router --locked --strip "$@" | tail -n 1
