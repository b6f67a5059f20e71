#!/usr/bin/env bash
# A bounded soak: two replicas sharing a real Redis under a paced
# (open-loop) load of API keys and JWTs, while the policy is edited every
# 5 s, Redis is stopped and restarted twice, and the upstream once. Then it
# prints what was sent and how it was answered, and each replica's RSS
# after warm-up and at the end, and checks the soak's rules:
#   - no request unanswered, none answered 5xx but 502 (while the upstream is down);
#   - no 2xx for the revoked token;
#   - each replica's RSS at the end within 10% of its RSS after warm-up.
# Usage: bash benches/soak.sh [seconds (default 600)] [requests/s per stream (default 100)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
RATE=${2:-100}
WARMUP=10
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need redis-server redis-server
cargo build --release --quiet --bin authgate --example bench_upstream --example bench_tool
BIN=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${UP:-}" ] && kill "$UP" 2>/dev/null; [ -n "${REDIS:-}" ] && kill "$REDIS" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

export SOAK_HS_SECRET=soak-hs-secret-soak-hs-secret-0123456
export SOAK_ADMIN_TOKEN=soak-admin-token-0123456789
export SOAK_REDIS_URL=redis://127.0.0.1:16379/
$BIN/authgate certs --out "$WORK" >/dev/null
KEY=agk_soak_key_0123456789abcdefghijklmnopqrstuvwxyz
DIGEST=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
policy() { # port admin-port marker
  cat <<YAML
server:
  listen: 127.0.0.1:$1
  workers: 1
  tls: {cert: gateway.pem, key: gateway-key.pem}
admin: {listen: "127.0.0.1:$2", token_env: SOAK_ADMIN_TOKEN}
upstream: {url: "http://127.0.0.1:18180", connect_timeout: 1s}
api_keys:
  keys:
    - {id: soak, sha256: "$DIGEST", scopes: [read]}
jwt:
  - issuer: https://soak/
    audiences: [soak]
    algorithms: [HS256]
    hs_secret_env: SOAK_HS_SECRET
rate_limits:
  backend: redis
  redis_url_env: SOAK_REDIS_URL
  default: {rate: 1000000/s, burst: 1000000}
revocation: {backend: redis}
routes:
  - {name: health, path: /healthz, auth: none}
  - {name: data, path: /data/**, scopes: [read]}  # edit $3
access_log: {output: /dev/null}
YAML
}
start_redis() { redis-server --port 16379 --save "" --appendonly no >/dev/null & REDIS=$!; }
start_upstream() { $BIN/examples/bench_upstream 127.0.0.1:18180 2>/dev/null & UP=$!; }
start_redis
start_upstream
policy 18543 19190 0 > "$WORK/a.yaml"
policy 18544 19191 0 > "$WORK/b.yaml"
(cd "$WORK" && exec "$BIN/authgate" run -c a.yaml 2>a.err) & A=$!; PIDS+=($A)
(cd "$WORK" && exec "$BIN/authgate" run -c b.yaml 2>b.err) & B=$!; PIDS+=($B)
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 100); do up 18543 && up 18544 && break; sleep 0.1; done
up 18543 && up 18544 || { echo "a replica did not start:"; cat "$WORK"/*.err; exit 1; }
TOKEN=$($BIN/authgate token --secret-env SOAK_HS_SECRET --sub soak-user --scope read --ttl 2h --iss https://soak/ --aud soak)
REVOKED=$($BIN/authgate token --secret-env SOAK_HS_SECRET --sub revoked-user --scope read --ttl 2h --iss https://soak/ --aud soak)
sleep 1
curl -sf -X POST http://127.0.0.1:19190/revocations -H "Authorization: Bearer $SOAK_ADMIN_TOKEN" \
  -d "{\"sub\": \"revoked-user\", \"iss\": \"https://soak/\", \"before\": $(( $(date +%s) + 1 ))}" >/dev/null
sleep 3   # the revocation reaches the other replica through Redis (<= 2 s)

rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
echo "== soak: ${SECS}s, $RATE req/s per stream, 5 streams over 2 replicas sharing Redis"
paced() { # name url header
  $BIN/examples/bench_tool paced "$2" "$WORK/gateway.pem" "$RATE" "$SECS" 64 "$3" > "$WORK/$1.json" 2>"$WORK/$1.err" &
  PIDS+=($!)
}
paced key-a https://127.0.0.1:18543/data/1 "X-API-Key: $KEY"
paced key-b https://127.0.0.1:18544/data/1 "X-API-Key: $KEY"
paced jwt-a https://127.0.0.1:18543/data/2 "Authorization: Bearer $TOKEN"
paced jwt-b https://127.0.0.1:18544/data/2 "Authorization: Bearer $TOKEN"
paced revoked https://127.0.0.1:18544/data/3 "Authorization: Bearer $REVOKED"
LOAD=("${PIDS[@]: -5}")
sleep "$WARMUP"
RSS_A0=$(rss $A); RSS_B0=$(rss $B)
START=$(date +%s)
R1=0; R2=0; U1=0
events() { # elapsed seconds: each event once, when its time has come
  local t=$1
  if { [ $R1 = 0 ] && [ "$t" -ge $((SECS / 5)) ]; } || { [ $R2 = 0 ] && [ "$t" -ge $((2 * SECS / 5)) ]; }; then
    if [ $R1 = 0 ]; then R1=1; else R2=1; fi
    echo "   t=${t}s: Redis stopped for 10 s"; kill "$REDIS"; wait "$REDIS" 2>/dev/null || true
    sleep 10; start_redis
  fi
  if [ $U1 = 0 ] && [ "$t" -ge $((3 * SECS / 5)) ]; then
    U1=1
    echo "   t=${t}s: upstream stopped for 5 s"; kill "$UP"; wait "$UP" 2>/dev/null || true
    sleep 5; start_upstream
  fi
}
EDITS=0
while [ $(( $(date +%s) - START )) -lt $((SECS - WARMUP - 5)) ]; do
  sleep 5
  EDITS=$((EDITS + 1))
  policy 18543 19190 $EDITS > "$WORK/a.yaml.new" && mv "$WORK/a.yaml.new" "$WORK/a.yaml"
  policy 18544 19191 $EDITS > "$WORK/b.yaml.new" && mv "$WORK/b.yaml.new" "$WORK/b.yaml"
  events $(( $(date +%s) - START + WARMUP ))
done
for p in "${LOAD[@]}"; do wait "$p" || true; done
RSS_A1=$(rss $A); RSS_B1=$(rss $B)

python3 - "$WORK" "$EDITS" "$RSS_A0" "$RSS_A1" "$RSS_B0" "$RSS_B1" <<'PY'
import json, sys
w, edits, a0, a1, b0, b1 = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
ok = True
print(f"\npolicy edits: {edits}")
print(f"{'stream':9} {'sent':>8} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7}  statuses")
for name in ["key-a", "key-b", "jwt-a", "jwt-b", "revoked"]:
    r = json.load(open(f"{w}/{name}.json"))
    print(f"{name:9} {r['sent']:8} {r['errors']:7} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['p999_ms']:7.2f}  {r['statuses']}")
    answered = sum(r["statuses"].values())
    if r["errors"] or answered != r["sent"]:
        ok = False; print(f"  FAIL {name}: {r['errors']} connection errors, {r['sent'] - answered} unanswered")
    bad = {s: n for s, n in r["statuses"].items() if s.startswith("5") and s != "502"}
    if bad:
        ok = False; print(f"  FAIL {name}: 5xx other than 502: {bad}")
    if name == "revoked" and any(s.startswith("2") for s in r["statuses"]):
        ok = False; print("  FAIL: the revoked token got a 2xx")
for label, start, end in [("replica A", a0, a1), ("replica B", b0, b1)]:
    growth = (end - start) / start
    print(f"{label}: RSS after warm-up {start/1024:.1f} MiB, at the end {end/1024:.1f} MiB ({growth:+.1%})")
    if growth > 0.10:
        ok = False; print(f"  FAIL {label}: RSS grew more than 10%")
print("\nsoak: " + ("ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
