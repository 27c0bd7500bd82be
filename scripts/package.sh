#!/usr/bin/env bash
# Builds the Debian package (release build, metadata in Cargo.toml [package.metadata.deb],
# unit and maintainer script in deploy/debian/) and prints the .deb's path on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo-deb >/dev/null; then
  echo "package.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked --version "${CARGO_DEB_VERSION:-3.8.0}" >&2
fi
# The service alone: built here with -p (the workspace's default member is the tooling crate,
# which cargo-deb's own build would pick), then packaged without building again.
cargo build --release --locked -p fl-router --bin fl-router >&2
cargo deb -p fl-router --no-build --strip "$@" | tail -n 1
