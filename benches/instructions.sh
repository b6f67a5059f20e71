#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's
# callgrind: deterministic where requests/s on a shared VM move by 5–10%
# run to run, so a change of 1–2% in the gateway's own work shows. Kernel
# time (TCP, the larger part of a proxied request) is not counted.
#
# Usage: bash benches/instructions.sh [path: /open | /key] [h1 | h2] [requests] [authgate | haproxy]
#   /open: no auth; /key: an API key with a rate limit. h2: 10 streams per connection.
#   haproxy: the same count for HAProxy without logging on /open (the
#   reference of benches/e2e.sh), a comparison this VM's noise cannot move.
# Prints "instructions/request N"; with KEEP=FILE, keeps the callgrind profile
# (read it with callgrind_annotate FILE); CONNECTIONS=N (default 4) sets the
# client connections (each costs a TLS handshake).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTE=${1:-/open}; PROTO=${2:-h1}; N=${3:-2000}; PROXY=${4:-authgate}
CONNECTIONS=${CONNECTIONS:-4}
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need valgrind valgrind
need h2load nghttp2-client
[ "$PROXY" = haproxy ] && need haproxy haproxy
[ "$PROXY" = haproxy ] && [ "$ROUTE" != /open ] && { echo "haproxy: only /open"; exit 2; }
cargo build --release --quiet --bin authgate --example bench_upstream
BIN=$PWD/target/release
# AUTHGATE=path counts another build (scripts/pgo.sh's, say) instead.
GATEWAY=$(realpath "${AUTHGATE:-$BIN/authgate}")
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
"$GATEWAY" certs --out "$WORK" >/dev/null
cat > "$WORK/gateway.yaml" <<YAML
server:
  listen: 127.0.0.1:18543
  workers: 1
  tls: {cert: gateway.pem, key: gateway-key.pem}
upstream: {url: "http://127.0.0.1:18180"}
admin:
  listen: 127.0.0.1:19190
  token_env: BENCH_ADMIN_TOKEN
api_keys:
  keys:
    - id: client-1
      sha256: $(printf agk_bench_1 | sha256sum | cut -d' ' -f1)
      scopes: [read]
rate_limits:
  default: { rate: 4000000000/s, burst: 4000000000 }
routes:
  - {name: open, path: /open, auth: none}
  - {name: key, path: /key, auth: [api_key]}
access_log: {output: access.log}
YAML
export BENCH_ADMIN_TOKEN=bench-admin-token-0123456789
$BIN/examples/bench_upstream 127.0.0.1:18180 2>/dev/null & PIDS+=($!)
cat "$WORK/gateway.pem" "$WORK/gateway-key.pem" > "$WORK/combined.pem"
cat > "$WORK/haproxy.cfg" <<CFG
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 30s
frontend fe
  bind 127.0.0.1:18543 ssl crt $WORK/combined.pem alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server up 127.0.0.1:18180
CFG
PROXY_CMD=("$GATEWAY" run -c gateway.yaml)
[ "$PROXY" = haproxy ] && PROXY_CMD=(haproxy -f haproxy.cfg -db)
# Instrumentation starts off: start-up and the warm-up requests are not counted.
# shellcheck disable=SC2086
(cd "$WORK" && exec valgrind --tool=callgrind --instr-atstart=no ${CGOPTS:-} \
  --callgrind-out-file="$WORK/callgrind.out" "${PROXY_CMD[@]}" 2>valgrind.err >/dev/null) & GW=$!; PIDS+=($GW)
for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/18543) 2>/dev/null && break; sleep 0.2; done
ARGS=(-c "$CONNECTIONS"); [ "$PROTO" = h1 ] && ARGS+=(--h1 -m 1) || ARGS+=(-m 10)
[ "$ROUTE" = /key ] && ARGS+=(-H "x-api-key: agk_bench_1")
h2load "${ARGS[@]}" -n 300 "https://127.0.0.1:18543$ROUTE" >/dev/null
callgrind_control -i on "$GW" >/dev/null 2>&1
h2load "${ARGS[@]}" -n "$N" "https://127.0.0.1:18543$ROUTE" | grep -q "$N succeeded" \
  || { echo "not every request succeeded"; exit 1; }
callgrind_control -i off "$GW" >/dev/null 2>&1
callgrind_control -d "$GW" >/dev/null 2>&1
sleep 1
# Each profile file's "events:" line names the columns of its "totals:" line.
python3 - "$N" "$PROXY, $PROTO $ROUTE, $N requests, $CONNECTIONS connections" "$WORK"/callgrind.out* <<'PY'
import sys
n, label, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
totals = {}
for path in files:
    events = []
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("totals:"):
            for event, count in zip(events, line.split()[1:]):
                totals[event] = totals.get(event, 0) + int(count)
print(f"instructions/request {totals.get('Ir', 0) // n}   ({label})")
if "I1mr" in totals:
    d1 = totals["D1mr"] + totals["D1mw"]
    ll = totals["ILmr"] + totals["DLmr"] + totals["DLmw"]
    print(f"L1i misses/request {totals['I1mr'] // n}, L1d misses/request {d1 // n}, LL misses/request {ll // n}")
PY
if [ -n "${KEEP:-}" ]; then cp "$(ls -S "$WORK"/callgrind.out* | head -1)" "$KEEP"; fi
