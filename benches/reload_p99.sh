#!/usr/bin/env bash
# p99 latency of a steady load through the gateway, without reloads and while
# a policy of 10,000 API keys is reloaded every second; and whether any
# request failed. One machine: gateway pinned to core 0 (one worker thread),
# wrk and the upstream on core 1; PIN=0 pins nothing and lets the system
# spread the threads. Usage: [PIN=0] [ROUNDS=3] bash benches/reload_p99.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
# Prefixes, not a function: `$!` of a backgrounded function is a subshell,
# and killing it would leave the real process running.
if [ "$PIN" = 1 ]; then CORE0=(taskset -c 0); CORE1=(taskset -c 1); else CORE0=(); CORE1=(); fi
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin authgate --example bench_upstream
WORK=$(mktemp -d)
PIDS=()
EDITOR_PID=
cleanup() {
  rm -f "$WORK/editing"
  for p in "${PIDS[@]}" $EDITOR_PID; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM HUP
trap 'exit 130' INT

"${CORE1[@]}" target/release/examples/bench_upstream 127.0.0.1:18080 >/dev/null 2>&1 &
PIDS+=($!)

# The watched directory ($WORK/policy) holds only the policy and its
# certificate: logs and results written next to it would wake the
# gateway's file watcher. Two versions of a 10,000-key policy that differ by one rotated key, so each
# reload is a real edit that has to be parsed, checked and compiled whole.
python3 - "$WORK" <<'PY'
import hashlib, os, sys
work = sys.argv[1]
def policy(first):
    lines = ["server:", "  listen: 127.0.0.1:18443", "  workers: 1",
             "  tls: {cert: gw.pem, key: gw-key.pem, generate_self_signed: true}",
             "upstream: {url: 'http://127.0.0.1:18080'}", "api_keys:", "  keys:"]
    for i in range(first, first + 10000):
        digest = hashlib.sha256(f"agk_bench_{i}".encode()).hexdigest()
        lines += [f"    - id: client-{i}", f"      sha256: {digest}", "      scopes: [orders:read]"]
    lines += ["routes:", "  - name: orders", "    path: /orders/**", "    scopes: [orders:read]", ""]
    return "\n".join(lines)
os.mkdir(f"{work}/policy")
open(f"{work}/policy/gateway.yaml", "w").write(policy(0))
open(f"{work}/policy-a.yaml", "w").write(policy(0))
open(f"{work}/policy-b.yaml", "w").write(policy(1))
PY
cat > "$WORK/saturating.lua" <<'LUA'
wrk.headers["X-API-Key"] = "agk_bench_4242"
LUA
# A paced load: each connection waits 1 ms between requests (about 40% of
# what the gateway's core can serve here), the way a steady production load
# leaves headroom.
cat > "$WORK/paced.lua" <<'LUA'
wrk.headers["X-API-Key"] = "agk_bench_4242"
function delay() return 1 end
LUA

"${CORE0[@]}" target/release/authgate run -c "$WORK/policy/gateway.yaml" >/dev/null 2>"$WORK/gw.err" &
GW=$!
PIDS+=($GW)
for _ in $(seq 100); do grep -q "listening addr" "$WORK/gw.err" && break; sleep 0.1; done
if ! kill -0 "$GW" 2>/dev/null || ! grep -q "listening addr" "$WORK/gw.err"; then
  echo "the gateway did not start:" >&2; cat "$WORK/gw.err" >&2; exit 1
fi

run_wrk() { "${CORE1[@]}" wrk -t1 -c32 -d"${DURATION}s" --latency -s "$WORK/$1.lua" https://127.0.0.1:18443/orders/1; }
p99() { awk '$1=="99%"{print $2}' "$1"; }
rps() { awk '/Requests\/sec/{print $2}' "$1"; }
failures() { awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}' "$1"; }
reloads() { grep -c "policy reloaded" "$WORK/gw.err" || true; }

# Each second the file is replaced the way editors and config managers do it
# (a new file renamed over the old one); the file watcher reloads. One
# long-lived process does the edits (a hard link and a rename, no copy): a
# `cp` and `mv` forked every second cost the load generator's core more than
# a millisecond each time, which showed up as gateway latency.
start_editing() {
  "${CORE1[@]}" python3 - "$WORK" <<'PY' &
import os, sys, time
work = sys.argv[1]
version = "b"
while os.path.exists(f"{work}/editing"):
    os.link(f"{work}/policy-{version}.yaml", f"{work}/policy/next.yaml")
    os.rename(f"{work}/policy/next.yaml", f"{work}/policy/gateway.yaml")
    version = "a" if version == "b" else "b"
    time.sleep(1)
PY
  EDITOR_PID=$!
}

# The VM's own noise moves one run's p99 by 10-15%, so each case runs ROUNDS
# times, steady and reloading interleaved, and the table shows medians.
median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
ms() { awk '{v=$1; if (v ~ /us$/) v=v/1000; else if (v ~ /ms$/) v=v+0; else if (v ~ /s$/) v=v*1000; printf "%.3f\n", v}'; }
printf '%-28s %11s %9s %7s %8s\n' "median of $ROUNDS × ${DURATION}s" "requests/s" "p99 ms" "failed" "reloads"
for load in saturating paced; do
  for phase in steady reloading; do : > "$WORK/$load-$phase.sum"; done
  for round in $(seq "$ROUNDS"); do
    # Both phases start the same way: a second's pause with the editor
    # already running or not (a Python start-up on the load generator's core
    # during a run would show as latency), so only the reloads differ.
    sleep 1.5
    run_wrk $load > "$WORK/out.txt"
    echo "$(rps "$WORK/out.txt") $(p99 "$WORK/out.txt" | ms) $(failures "$WORK/out.txt") 0" >> "$WORK/$load-steady.sum"
    touch "$WORK/editing"; start_editing
    sleep 1.5
    before=$(reloads)
    run_wrk $load > "$WORK/out.txt"
    rm -f "$WORK/editing"; wait "$EDITOR_PID" || true
    sleep 1.5  # a reload that was under way when the run ended is counted too
    echo "$(rps "$WORK/out.txt") $(p99 "$WORK/out.txt" | ms) $(failures "$WORK/out.txt") $(( $(reloads) - before ))" >> "$WORK/$load-reloading.sum"
  done
  for phase in steady reloading; do
    f="$WORK/$load-$phase.sum"
    printf '%-28s %11s %9s %7s %8s\n' "$load, $phase" "$(cut -d' ' -f1 "$f" | median)" \
      "$(cut -d' ' -f2 "$f" | median)" "$(awk '{n+=$3} END{print n+0}' "$f")" "$(awk '{n+=$4} END{print n+0}' "$f")"
  done
  s=$(cut -d' ' -f2 "$WORK/$load-steady.sum" | median); r=$(cut -d' ' -f2 "$WORK/$load-reloading.sum" | median)
  awk -v s="$s" -v r="$r" -v l="$load" 'BEGIN{printf "%-28s %+.0f%%\n", l ", p99 change", (r/s-1)*100}'
done
echo "each reload: 10,000 keys, one rotated; reloads refused: $(grep -c "reload refused" "$WORK/gw.err" || true)"
