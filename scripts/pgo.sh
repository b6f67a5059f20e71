#!/usr/bin/env bash
# A profile-guided release build of authgate: build it instrumented, run it
# under a training load of the requests it serves most (TLS keep-alive over
# HTTP/1.1 and HTTP/2: no auth, API key, HS256 and RS256 tokens, some
# refusals; forward-auth decisions), then build it again with the measured
# profile. LLVM then lays out the hot path together and inlines along it,
# which is what a proxy whose per-request code is larger than the CPU's
# instruction cache needs most.
#
# Usage: bash scripts/pgo.sh      -> target/pgo/release/authgate
# Needs h2load (nghttp2-client) and an llvm-profdata that reads the profiles
# of rustc's LLVM: rustup's llvm-tools if installed, else Debian's llvm-19
# (installed when missing). The plain `cargo build --release` stays as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need h2load nghttp2-client

profdata() {
  local sysroot tool
  sysroot=$(rustc --print sysroot)
  for tool in "$sysroot"/lib/rustlib/*/bin/llvm-profdata /usr/lib/llvm-{22,21,20,19}/bin/llvm-profdata; do
    [ -x "$tool" ] && { echo "$tool"; return; }
  done
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19 >/dev/null
  echo /usr/lib/llvm-19/bin/llvm-profdata
}
PROFDATA=$(profdata)
PROFILES=$PWD/target/pgo-profiles
rm -rf "$PROFILES" && mkdir -p "$PROFILES"

echo "== building the instrumented gateway and the bench tools"
cargo build --release --quiet --example bench_upstream --example bench_tool
RUSTFLAGS="-Cprofile-generate=$PROFILES" \
  cargo build --release --quiet --bin authgate --target-dir target/pgo-generate
TOOLS=$PWD/target/release/examples
GEN=$PWD/target/pgo-generate/release/authgate

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
"$GEN" certs --out "$WORK" >/dev/null
"$TOOLS/bench_tool" tokens "$WORK" 200 >/dev/null
export BENCH_HS_SECRET=bench-hs-secret-bench-hs-secret-0123
export BENCH_ADMIN_TOKEN=bench-admin-token-0123456789
cat > "$WORK/gateway.yaml" <<YAML
server:
  listen: 127.0.0.1:18643
  workers: 1
  tls: {cert: gateway.pem, key: gateway-key.pem}
upstream: {url: "http://127.0.0.1:18280"}
forward_auth:
  listen: 127.0.0.1:19291
admin:
  listen: 127.0.0.1:19290
  token_env: BENCH_ADMIN_TOKEN
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
    - id: client-1
      sha256: $(printf agk_bench_1 | sha256sum | cut -d' ' -f1)
      scopes: [read]
rate_limits:
  default: { rate: 4000000000/s, burst: 4000000000 }
routes:
  - {name: open, path: /open, auth: none}
  - {name: key, path: /key, auth: [api_key]}
  - {name: jwt, path: /jwt, auth: [jwt]}
access_log: {output: access.log}
YAML
"$TOOLS/bench_upstream" 127.0.0.1:18280 2>/dev/null & PIDS+=($!)
(cd "$WORK" && exec "$GEN" run -c gateway.yaml 2>gateway.err) & GW=$!; PIDS+=($GW)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18643) 2>/dev/null && break; sleep 0.1; done

echo "== training load"
URL=https://127.0.0.1:18643
# train CLASS H2LOAD-ARGS...: every response must be of CLASS (2xx or 4xx),
# or the profile would be of the wrong path.
train() {
  local class=$1 n out
  shift
  out=$(h2load "$@" 2>&1) || true
  n=$(echo "$out" | awk '/^requests:/ {print $2}')
  echo "$out" | grep -q "status codes: .*\b$n $class" && return
  echo "training step failed: h2load $*"; echo "$out" | tail -5; cat "$WORK/gateway.err"; exit 1
}
HS="authorization: Bearer $(cat "$WORK/hs_token")"
RS="authorization: Bearer $(cat "$WORK/rs_token")"
for proto in "--h1 -m 1" "-m 10"; do
  # shellcheck disable=SC2086
  {
    train 2xx $proto -c 16 -n 40000 "$URL/open"
    train 2xx $proto -c 16 -n 20000 -H "x-api-key: agk_bench_1" "$URL/key"
    train 2xx $proto -c 16 -n 20000 -H "$HS" "$URL/jwt"
    train 2xx $proto -c 16 -n 20000 -H "$RS" "$URL/jwt"
    train 4xx $proto -c 4 -n 2000 -H "x-api-key: agk_wrong" "$URL/key"
    train 4xx $proto -c 4 -n 2000 "$URL/nowhere"
  }
done
# Decisions for a front proxy (nginx auth_request, Caddy forward_auth).
FA=http://127.0.0.1:19291/_authgate
train 2xx --h1 -c 16 -n 20000 -H "x-original-uri: /key" -H "x-original-method: GET" \
  -H "x-api-key: agk_bench_1" "$FA"
train 2xx --h1 -c 16 -n 10000 -H "x-forwarded-uri: /jwt" -H "x-forwarded-method: GET" -H "$HS" "$FA"
train 4xx --h1 -c 4 -n 2000 -H "x-original-uri: /key" -H "x-original-method: GET" "$FA"
kill -TERM "$GW"; wait "$GW" || true

"$PROFDATA" merge -o "$PROFILES/merged.profdata" "$PROFILES"/*.profraw
# Named by its content: cargo does not look into the file RUSTFLAGS names,
# so a new profile of unchanged code would otherwise not be built with.
PROFILE="$PROFILES/$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16).profdata"
mv "$PROFILES/merged.profdata" "$PROFILE"
echo "== building with the profile"
RUSTFLAGS="-Cprofile-use=$PROFILE" \
  cargo build --release --quiet --bin authgate --target-dir target/pgo
echo "target/pgo/release/authgate (profile: $PROFILE)"
