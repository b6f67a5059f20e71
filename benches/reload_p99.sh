#!/usr/bin/env bash
# p99 latency of a steady load through the gateway, without reloads and while
# a policy of 10,000 API keys is reloaded every second; and whether any
# request failed. One machine: gateway pinned to core 0 (one worker thread),
# wrk and the upstream on core 1; PIN=0 pins nothing and lets the system
# spread the threads. Usage: [PIN=0] bash benches/reload_p99.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
PIN=${PIN:-1}
on_core() { local core=$1; shift; if [ "$PIN" = 1 ]; then taskset -c "$core" "$@"; else "$@"; fi; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin authgate --example bench_upstream
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

on_core 1 target/release/examples/bench_upstream 127.0.0.1:18080 2>/dev/null &
PIDS+=($!)

python3 - "$WORK" <<'PY'
import hashlib, sys
work = sys.argv[1]
lines = ["server:", "  listen: 127.0.0.1:18443", "  workers: 1",
         "  tls: {cert: gw.pem, key: gw-key.pem, generate_self_signed: true}",
         "upstream: {url: 'http://127.0.0.1:18080'}", "api_keys:", "  keys:"]
for i in range(10000):
    digest = hashlib.sha256(f"agk_bench_{i}".encode()).hexdigest()
    lines += [f"    - id: client-{i}", f"      sha256: {digest}", "      scopes: [orders:read]"]
lines += ["routes:", "  - name: orders", "    path: /orders/**", "    scopes: [orders:read]", ""]
open(f"{work}/gateway.yaml", "w").write("\n".join(lines))
PY
cat > "$WORK/key.lua" <<'LUA'
wrk.headers["X-API-Key"] = "agk_bench_4242"
LUA

on_core 0 target/release/authgate run -c "$WORK/gateway.yaml" >/dev/null 2>"$WORK/gw.err" &
GW=$!
PIDS+=($GW)
for _ in $(seq 100); do grep -q "listening addr" "$WORK/gw.err" && break; sleep 0.1; done

run_wrk() { on_core 1 wrk -t1 -c32 -d"${DURATION}s" --latency -s "$WORK/key.lua" https://127.0.0.1:18443/orders/1; }
p99() { awk '$1=="99%"{print $2}' "$1"; }
rps() { awk '/Requests\/sec/{print $2}' "$1"; }
failures() { awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}' "$1"; }

run_wrk > "$WORK/steady.txt"
( while kill -0 "$GW" 2>/dev/null; do kill -HUP "$GW"; sleep 1; done ) &
PIDS+=($!)
run_wrk > "$WORK/reloading.txt"
RELOADS=$(grep -c "policy reloaded" "$WORK/gw.err" || true)

printf '%-22s %12s %10s %9s\n' "run (${DURATION}s, 32 conns)" "requests/s" "p99" "failed"
printf '%-22s %12s %10s %9s\n' "steady" "$(rps "$WORK/steady.txt")" "$(p99 "$WORK/steady.txt")" "$(failures "$WORK/steady.txt")"
printf '%-22s %12s %10s %9s\n' "reload every 1s" "$(rps "$WORK/reloading.txt")" "$(p99 "$WORK/reloading.txt")" "$(failures "$WORK/reloading.txt")"
echo "reloads completed during the second run: $RELOADS (10,000 keys each)"
