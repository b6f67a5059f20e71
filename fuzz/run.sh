#!/usr/bin/env bash
# A short, bounded fuzz run of every target (default 60 s each) on the
# stable toolchain: cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP
# unlocks. Usage: bash fuzz/run.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in normalize_path route_match jwt_preparse policy_loader strip_headers; do
  echo "== $target (${SECONDS_PER_TARGET}s)"
  cargo fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048
done
