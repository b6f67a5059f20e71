#!/usr/bin/env bash
# End-to-end load benchmark on one machine, authgate and HAProxy side by side.
# The proxy under test is pinned to core 0 with one worker thread; wrk and the
# upstream share core 1. HAProxy runs twice: logging one line per request
# like authgate (column "haproxy") and with no logging at all, its fastest
# ("haproxy-nolog"), so both comparisons come from the same run. TLS keep-alive, 50 connections, each job run 3 times
# interleaved; the table shows medians. Usage: bash benches/e2e.sh [seconds-per-run]
# authgate is the profile-guided build of scripts/pgo.sh (about 8 minutes
# more); PGO=0 measures the plain release build, AUTHGATE=path any build.
#
# Jobs: (a) direct to the upstream, plain HTTP   (b) proxy, route without auth
#       (c) API key from a 10,000-key policy      (d) HS256 JWT
#       (e) RS256 JWT, one token repeated         (f) RS256 JWT, a fresh token per request
#       (g) nginx alone (TLS + proxy, no auth)    (h) nginx + authgate forward-auth, API key
#       (i) API key as (c), with the dashboard's statistics off (admin.dashboard: false);
#           (c) runs with them on, the default, so (c)/(i) is their cost
#       (j) HTTP/2 clients, no auth (h2load: 64 connections x 10 streams), authgate and both HAProxys
#       (k) paced (open-loop) load at half of HAProxy-without-logging's (b) rate, no auth:
#           p50/p99/p99.9 for authgate and HAProxy without logging
#       (l) the paced load of (k) on authgate while 10,000 idle keep-alive TLS connections
#           are held open: its p99 next to (k)'s, and the RSS per idle connection
# nginx (one worker) shares core 0 with authgate in (g) and (h): the same
# one core does TLS, proxying and the decision.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-4}
ROUNDS=3
CONNS=50
FRESH_TOKENS=${FRESH_TOKENS:-40000}
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need haproxy haproxy
need nginx nginx
need h2load nghttp2-client
# The held connections plus the proxies' own descriptors.
ulimit -n "$(ulimit -Hn)"
HOLD=$(( $(ulimit -n) > 12000 ? 10000 : $(ulimit -n) - 2000 ))
cargo build --release --quiet --bin authgate --example bench_upstream --example bench_tool
BIN=target/release
# The gateway measured: the profile-guided build of scripts/pgo.sh, the one
# docs/operations.md recommends for production (PGO=0: the plain release
# build; AUTHGATE=path: any other build).
if [ -z "${AUTHGATE:-}" ] && [ "${PGO:-1}" = 1 ]; then
  bash scripts/pgo.sh
  AUTHGATE=target/pgo/release/authgate
fi
GATEWAY=$(realpath "${AUTHGATE:-$BIN/authgate}")
echo "== measuring $GATEWAY"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

echo "== preparing keys, tokens and policies in $WORK"
"$GATEWAY" certs --out "$WORK" >/dev/null
cat "$WORK/gateway.pem" "$WORK/gateway-key.pem" > "$WORK/combined.pem"
$BIN/examples/bench_tool tokens "$WORK" "$FRESH_TOKENS"
HS_SECRET=bench-hs-secret-bench-hs-secret-0123
export BENCH_HS_SECRET=$HS_SECRET
export BENCH_ADMIN_TOKEN=bench-admin-token-0123456789
python3 - "$WORK" <<'PY'
import hashlib, sys
w = sys.argv[1]
keys, mapping = [], []
for i in range(10000):
    d = hashlib.sha256(f"agk_bench_{i}".encode()).hexdigest()
    keys += [f"    - id: client-{i}", f"      sha256: {d}", "      scopes: [read]"]
    mapping.append(f"{d} client-{i}")
open(f"{w}/keys.map", "w").write("\n".join(mapping) + "\n")
policy = f"""server:
  listen: 127.0.0.1:18443
  workers: 1
  max_connections: 20000
  idle_timeout: 120s
  tls: {{cert: gateway.pem, key: gateway-key.pem}}
forward_auth:
  listen: 127.0.0.1:19091
admin:
  listen: 127.0.0.1:19090
  token_env: BENCH_ADMIN_TOKEN
upstream: {{url: "http://127.0.0.1:18080"}}
jwt:
  - issuer: https://hs.bench/
    audiences: [bench]
    algorithms: [HS256]
    hs_secret_env: BENCH_HS_SECRET
  - issuer: https://rs.bench/
    audiences: [bench]
    algorithms: [RS256]
    jwks_file: jwks.json
api_keys:
  keys:
{chr(10).join(keys)}
rate_limits:
  default: {{ rate: 4000000000/s, burst: 4000000000 }}
routes:
  - {{name: open, path: /open, auth: none}}
  - {{name: key, path: /key, auth: [api_key]}}
  - {{name: jwt-hs, path: /jwt-hs, auth: [jwt]}}
  - {{name: jwt-rs, path: /jwt-rs, auth: [jwt]}}
access_log: {{output: access.log}}
"""
open(f"{w}/gateway.yaml", "w").write(policy)
# The same gateway without the dashboard's collection, for job (i).
quiet = (policy.replace("127.0.0.1:18443", "127.0.0.1:18444")
         .replace("127.0.0.1:19091", "127.0.0.1:19093")
         .replace("listen: 127.0.0.1:19090", "listen: 127.0.0.1:19092\n  dashboard: false")
         .replace("output: access.log", "output: access-quiet.log"))
open(f"{w}/gateway-quiet.yaml", "w").write(quiet)
PY
cat > "$WORK/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 9000
  log 127.0.0.1:5514 local0
defaults
  mode http
  # One log line per request, as authgate writes (same work), sent the way
  # HAProxy is usually run: to syslog over UDP (here a sink that drops it).
  log global
  option httplog
  timeout connect 2s
  timeout client 120s
  timeout server 30s
  timeout http-keep-alive 120s
frontend fe
  bind 127.0.0.1:19443 ssl crt $WORK/combined.pem alpn h2,http/1.1
  stick-table type string len 64 size 200k expire 60s store http_req_rate(1s)
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny deny_status 401 if { path /key } !{ req.hdr(x-api-key),sha2(256),hex,lower,map($WORK/keys.map) -m found }
  http-request deny deny_status 401 if { path /jwt-hs } !{ var(txn.bearer),jwt_verify("HS256","$HS_SECRET") -m int 1 }
  http-request deny deny_status 401 if { path /jwt-rs } !{ var(txn.bearer),jwt_verify("RS256","$WORK/rs_public.pem") -m int 1 }
  http-request track-sc0 req.hdr(x-api-key) if { path /key }
  http-request track-sc0 var(txn.bearer),jwt_payload_query('$.sub') if { path_beg /jwt }
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 4000000000 }
  default_backend be
backend be
  http-reuse always
  server up 127.0.0.1:18080
CFG
# The same HAProxy with no logging at all: its fastest configuration.
grep -v -e '^  log ' -e 'option httplog' "$WORK/haproxy.cfg" \
  | sed 's/127.0.0.1:19443/127.0.0.1:19444/' > "$WORK/haproxy-nolog.cfg"
cat > "$WORK/nginx.conf" <<CFG
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 20000; }
http {
  # One log line per request, as authgate writes (buffered, like its own).
  access_log $WORK/nginx.access.log combined buffer=64k;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  fastcgi_temp_path $WORK/nginx-fastcgi;
  uwsgi_temp_path $WORK/nginx-uwsgi;
  scgi_temp_path $WORK/nginx-scgi;
  upstream api { server 127.0.0.1:18080; keepalive 64; }
  upstream decision { server 127.0.0.1:19091; keepalive 64; }
  server {
    listen 127.0.0.1:20443 ssl;
    ssl_certificate $WORK/gateway.pem;
    ssl_certificate_key $WORK/gateway-key.pem;
    keepalive_requests 1000000;
    location /open {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://api;
    }
    location /key {
      auth_request /_authgate;
      auth_request_set \$authgate_subject \$upstream_http_x_auth_subject;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Auth-Subject \$authgate_subject;
      proxy_pass http://api;
    }
    location = /_authgate {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_pass http://decision;
    }
  }
}
CFG
echo 'wrk.headers["X-API-Key"] = "agk_bench_4242"' > "$WORK/key.lua"
echo "wrk.headers[\"Authorization\"] = \"Bearer $(cat "$WORK/hs_token")\"" > "$WORK/hs.lua"
echo "wrk.headers[\"Authorization\"] = \"Bearer $(cat "$WORK/rs_token")\"" > "$WORK/rs.lua"
cat > "$WORK/fresh.lua" <<LUA
local tokens, i = {}, 0
for line in io.lines("$WORK/rs_tokens") do tokens[#tokens + 1] = line end
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA

taskset -c 1 $BIN/examples/bench_upstream 127.0.0.1:18080 2>/dev/null & PIDS+=($!)
taskset -c 1 python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 5514))
while True:
    s.recv(65535)
" & PIDS+=($!)
(cd "$WORK" && exec taskset -c 0 "$GATEWAY" run -c gateway.yaml 2>gw.err) & GW=$!; PIDS+=($GW)
(cd "$WORK" && exec taskset -c 0 "$GATEWAY" run -c gateway-quiet.yaml 2>gw-quiet.err) & PIDS+=($!)
taskset -c 0 haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>"$WORK/haproxy.err" & PIDS+=($!)
taskset -c 0 haproxy -f "$WORK/haproxy-nolog.cfg" -db >"$WORK/haproxy-nolog.log" 2>"$WORK/haproxy-nolog.err" & PIDS+=($!)
taskset -c 0 nginx -c "$WORK/nginx.conf" -e "$WORK/nginx.err" & PIDS+=($!)
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 100); do up 18443 && up 18444 && up 19443 && up 19444 && up 20443 && break; sleep 0.1; done
up 19444 || { echo "haproxy (no logging) did not start:"; cat "$WORK/haproxy-nolog.err"; exit 1; }
up 18444 || { echo "authgate (statistics off) did not start:"; cat "$WORK/gw-quiet.err"; exit 1; }
up 18443 || { echo "authgate did not start:"; cat "$WORK/gw.err"; exit 1; }
up 19443 || { echo "haproxy did not start:"; cat "$WORK/haproxy.err"; exit 1; }
up 20443 || { echo "nginx did not start:"; cat "$WORK/nginx.err"; exit 1; }
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
IDLE_RSS=$(rss "$GW")

echo "== both proxies must refuse bad credentials before anything is measured"
code() { curl -sk -o /dev/null -w '%{http_code}' "$@" || { echo "cannot reach a proxy:"; tail -n 5 "$WORK/gw.err" "$WORK/haproxy.err"; exit 1; }; }
BAD_TOKEN="$(cut -d. -f1,2 "$WORK/rs_token").$(cut -d. -f3 "$WORK/hs_token")"
for port in 18443 19443 19444; do
  for check in "/key -H X-API-Key:agk_wrong" "/jwt-hs -H Authorization:Bearer.$BAD_TOKEN" "/jwt-rs -H Authorization:Bearer.$BAD_TOKEN"; do
    set -- $check
    header="${3/Bearer./Bearer }"
    got=$(code "https://127.0.0.1:$port$1" -H "$header")
    [ "$got" = 401 ] || { echo "port $port accepted a bad credential on $1 (HTTP $got)"; exit 1; }
  done
  [ "$(code "https://127.0.0.1:$port/key" -H 'X-API-Key: agk_bench_7')" = 200 ] || { echo "port $port refused a good key"; exit 1; }
  [ "$(code "https://127.0.0.1:$port/jwt-rs" -H "Authorization: Bearer $(cat "$WORK/rs_token")")" = 200 ] || { echo "port $port refused a good token"; exit 1; }
done
[ "$(code https://127.0.0.1:20443/key -H 'X-API-Key: agk_wrong')" = 401 ] || { echo "nginx + forward-auth accepted a bad key"; exit 1; }
[ "$(code https://127.0.0.1:20443/key -H 'X-API-Key: agk_bench_7')" = 200 ] || { echo "nginx + forward-auth refused a good key"; exit 1; }
echo "ok: bad keys and bad tokens get 401 from both (and from nginx + forward-auth)"

run() { # name url script
  local out="$WORK/$1.$2.txt"
  if [ -n "$4" ]; then taskset -c 1 wrk -t1 -c$CONNS -d${DURATION}s --latency -s "$4" "$3" >> "$out" 2>&1
  else taskset -c 1 wrk -t1 -c$CONNS -d${DURATION}s --latency "$3" >> "$out" 2>&1; fi
}
# in_turn ROUND ITEM...: the items, rotated by one place per round, so each
# round starts with another proxy and none always runs right after the
# direct job or after another's load.
in_turn() {
  local round=$1; shift
  local items=("$@") i
  for i in "${!items[@]}"; do echo "${items[(i + round - 1) % ${#items[@]}]}"; done
}
PROXIES=(authgate:18443 haproxy:19443 haproxy-nolog:19444)
LOAD_RSS=0
for round in $(seq $ROUNDS); do
  echo "== round $round/$ROUNDS"
  run a direct http://127.0.0.1:18080/ ""
  for proxy in $(in_turn "$round" "${PROXIES[@]}"); do
    name=${proxy%%:*}; port=${proxy##*:}
    run b $name "https://127.0.0.1:$port/open" ""
    run c $name "https://127.0.0.1:$port/key" "$WORK/key.lua" &
    if [ "$name" = authgate ] && [ "$round" = 1 ]; then sleep $((DURATION / 2)); LOAD_RSS=$(rss "$GW"); fi
    wait $!
    run d $name "https://127.0.0.1:$port/jwt-hs" "$WORK/hs.lua"
    run e $name "https://127.0.0.1:$port/jwt-rs" "$WORK/rs.lua"
    run f $name "https://127.0.0.1:$port/jwt-rs" "$WORK/fresh.lua"
  done
  run g nginx https://127.0.0.1:20443/open ""
  run h nginx https://127.0.0.1:20443/key "$WORK/key.lua"
  run i authgate https://127.0.0.1:18444/key "$WORK/key.lua"
done

echo "== (j) HTTP/2: h2load, 64 connections x 10 streams, rounds interleaved"
for round in $(seq $ROUNDS); do
  for proxy in $(in_turn "$round" "${PROXIES[@]}"); do
    name=${proxy%%:*}; port=${proxy##*:}
    taskset -c 1 h2load -c64 -m10 -D "$DURATION" "https://127.0.0.1:$port/open" >> "$WORK/j.$name.h2" 2>&1 || true
  done
done

# (k) and (l): half of HAProxy-without-logging's saturation rate, paced.
# BENCH_WARM: the generator opens its 64 connections before its clock
# starts. Opening them as the load starts stalls the generator itself for
# tens of milliseconds (its ClientHellos leave 20-30 ms after the TCP
# connects, against either proxy), which made the p99 of an 8-second run
# the generator's start-up rather than either proxy's latency.
PACED_RATE=$(python3 - "$WORK" <<'PY'
import re, statistics, sys
text = open(f"{sys.argv[1]}/b.haproxy-nolog.txt").read()
print(int(statistics.median(float(x) for x in re.findall(r"Requests/sec:\s+([\d.]+)", text)) / 2))
PY
)
PACED_SECS=$((DURATION * 2))
echo "== (k) paced load at $PACED_RATE req/s for ${PACED_SECS}s, 64 connections"
for round in $(seq $ROUNDS); do
  for proxy in $(in_turn "$round" authgate:18443 haproxy-nolog:19444); do
    name=${proxy%%:*}; port=${proxy##*:}
    BENCH_WARM=1 taskset -c 1 $BIN/examples/bench_tool paced "https://127.0.0.1:$port/open" "$WORK/gateway.pem" \
      "$PACED_RATE" "$PACED_SECS" 64 >> "$WORK/k.$name.paced" 2>/dev/null
  done
done

echo "== (l) $HOLD idle keep-alive TLS connections to authgate, and the paced load of (k) beside them"
BEFORE_HOLD=$(rss "$GW")
taskset -c 1 $BIN/examples/bench_tool hold 127.0.0.1:18443 "$WORK/gateway.pem" "$HOLD" $((PACED_SECS * ROUNDS + 30)) 2>"$WORK/hold.err" & HOLDER=$!
for _ in $(seq 600); do grep -q holding "$WORK/hold.err" 2>/dev/null && break; sleep 0.1; done
sleep 1
HELD_RSS=$(rss "$GW")
for round in $(seq $ROUNDS); do
  BENCH_WARM=1 taskset -c 1 $BIN/examples/bench_tool paced https://127.0.0.1:18443/open "$WORK/gateway.pem" \
    "$PACED_RATE" "$PACED_SECS" 64 >> "$WORK/l.authgate.paced" 2>/dev/null
done
kill $HOLDER 2>/dev/null || true

python3 - "$WORK" "$DURATION" "$IDLE_RSS" "$LOAD_RSS" "$BEFORE_HOLD" "$HELD_RSS" "$HOLD" <<'PY'
import re, sys, statistics, os
w, dur, idle, load, before, held, n = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
def parse(path):
    text = open(path).read()
    rps = [float(x) for x in re.findall(r"Requests/sec:\s+([\d.]+)", text)]
    def ms(tag):
        out = []
        for v, unit in re.findall(rf"^\s+{tag}\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
            out.append(float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit])
        return out
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    return statistics.median(rps), statistics.median(ms("50%")), statistics.median(ms("99%")), errors
jobs = {"a": "direct to upstream (plain HTTP)", "b": "no auth", "c": "API key, 10k-key policy",
        "d": "HS256 JWT", "e": "RS256 JWT, same token", "f": "RS256 JWT, fresh token each",
        "g": "nginx alone, no auth", "h": "nginx + forward-auth, API key",
        "i": "API key, dashboard stats off"}
res = {}
for f in os.listdir(w):
    m = re.match(r"([a-i])\.([\w-]+)\.txt$", f)
    if m: res[(m[1], m[2])] = parse(os.path.join(w, f))
print(f"\nmedians of 3 interleaved {dur}s runs, 50 TLS keep-alive connections, proxy on 1 core\n")
print(f"{'job':34} {'proxy':13} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
for j, label in jobs.items():
    for proxy in {"a": ["direct"], "g": ["nginx"], "h": ["nginx"], "i": ["authgate"]}.get(j, ["authgate", "haproxy", "haproxy-nolog"]):
        r = res.get((j, proxy))
        if r: print(f"{'('+j+') '+label:34} {proxy:13} {r[0]:9.0f} {r[1]:8.2f} {r[2]:8.2f} {r[3]:8d}")
print("\nratios (requests/s)")
b = res[("b", "authgate")][0]
print(f"  authgate (b)/(a) TLS+proxy vs direct: {b / res[('a','direct')][0]:.2f}")
for j in "bcdef":
    ag, hp, quiet = res[(j, "authgate")], res[(j, "haproxy")], res[(j, "haproxy-nolog")]
    print(f"  ({j}) authgate/(b) {ag[0]/b:.2f}   vs HAProxy logging: req/s {ag[0]/hp[0]:.2f} p99 {ag[2]/hp[2]:.2f}   "
          f"vs HAProxy without logging: req/s {ag[0]/quiet[0]:.2f} p99 {ag[2]/quiet[2]:.2f}")
g, h, c = res[("g", "nginx")], res[("h", "nginx")], res[("c", "authgate")]
i = res[("i", "authgate")]
print(f"  (c)/(i) dashboard statistics on / off: req/s {res[('c','authgate')][0]/i[0]:.3f}   p99 {res[('c','authgate')][2]/i[2]:.2f}")
print(f"  (h) nginx+forward-auth / nginx alone (g) {h[0]/g[0]:.2f}   / authgate as the proxy (c) {h[0]/c[0]:.2f}   p99 (h)/(c) {h[2]/c[2]:.2f}")
def h2(path):
    text = open(path).read()
    rps = [float(x) for x in re.findall(r"finished in [\d.]+s, ([\d.]+) req/s", text)]
    mean = [float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u] for v, u in re.findall(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)]
    return (statistics.median(rps) if rps else 0.0, statistics.median(mean) if mean else 0.0)
print("\n(j) HTTP/2, h2load 64 connections x 10 streams (medians)")
j = {}
for proxy in ["authgate", "haproxy", "haproxy-nolog"]:
    path = os.path.join(w, f"j.{proxy}.h2")
    if os.path.exists(path):
        j[proxy] = h2(path)
        print(f"  {proxy:13} {j[proxy][0]:9.0f} req/s   mean {j[proxy][1]:.2f} ms")
if all(k in j and j[k][0] for k in ["authgate", "haproxy", "haproxy-nolog"]):
    print(f"  authgate / HAProxy logging {j['authgate'][0]/j['haproxy'][0]:.2f}   / without logging {j['authgate'][0]/j['haproxy-nolog'][0]:.2f}")
import json
def paced(path):
    runs = [json.loads(l) for l in open(path) if l.startswith("{")]
    pick = lambda k: statistics.median(r[k] for r in runs)
    return pick("p50_ms"), pick("p99_ms"), pick("p999_ms"), sum(r["errors"] for r in runs), runs[0]["rate"] if runs else 0
print("\n(k) paced (open-loop) load at half of HAProxy-without-logging's (b) rate, latency from the scheduled time")
k = {}
for proxy in ["authgate", "haproxy-nolog"]:
    path = os.path.join(w, f"k.{proxy}.paced")
    if os.path.exists(path):
        k[proxy] = paced(path)
        print(f"  {proxy:13} {k[proxy][4]:7.0f} req/s   p50 {k[proxy][0]:.2f}  p99 {k[proxy][1]:.2f}  p99.9 {k[proxy][2]:.2f} ms   errors {k[proxy][3]}")
if len(k) == 2:
    print(f"  p99 authgate/HAProxy {k['authgate'][1]/k['haproxy-nolog'][1]:.2f}   p99.9 {k['authgate'][2]/k['haproxy-nolog'][2]:.2f}")
lpath = os.path.join(w, "l.authgate.paced")
if os.path.exists(lpath) and "authgate" in k:
    l = paced(lpath)
    print(f"\n(l) the same paced load with {n} idle TLS connections held: p50 {l[0]:.2f}  p99 {l[1]:.2f}  p99.9 {l[2]:.2f} ms"
          f"   p99 with / without them {l[1]/k['authgate'][1]:.2f}")
print(f"\nauthgate resident memory: idle {idle/1024:.1f} MiB, under load {load/1024:.1f} MiB, "
      f"with {n} idle TLS connections {held/1024:.1f} MiB "
      f"({(held-before)/n:.1f} KiB per connection)")
PY
