#!/usr/bin/env bash
# The whole test suite on a machine that has only the Rust toolchain:
# installs the real parts the integration tests start (redis-server) when
# they are missing, then runs `cargo test`. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (the scale-out tests start a real one)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

cargo test "$@"
