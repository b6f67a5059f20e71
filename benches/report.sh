#!/usr/bin/env bash
# How fast `authgate report` reads a JSON access log: writes LINES lines
# shaped like the gateway's own (mixed decisions, routes and callers) and
# times one report over them, plain and gzip.
# Usage: bash benches/report.sh [lines]   (default 2,000,000 ≈ 900 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-2000000}
cargo build --release --quiet --bin authgate
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/access.log" "$LINES" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
kinds = [
    ("allowed", None, 200, "orders-read", "reader"),
    ("allowed", None, 200, "orders-write", "admin"),
    ("unauthenticated", "missing_credential", 401, "orders-read", None),
    ("invalid_token", "unknown_key", 401, "orders-read", None),
    ("forbidden", "missing_scope", 403, "admin", "reader"),
    ("rate_limited", "rate_limited", 429, "orders-read", "reader"),
]
with open(path, "w") as f:
    for i in range(n):
        decision, reason, status, route, key = kinds[i % len(kinds)]
        ts = f"2026-11-25T{(i // 3600000) % 24:02d}:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
        f.write(json.dumps({"ts": ts, "request_id": f"{i:024x}", "client_ip": "127.0.0.1",
            "method": "GET", "path": "/orders/7", "status": status, "bytes_out": 468,
            "duration_ms": 0.2 + (i % 97) / 10, "upstream_ms": 0.08, "route": route,
            "auth_method": "api_key", "subject": key, "key_id": key, "decision": decision,
            "reason": reason, "user_agent": "bench/1", "tls_version": "TLSv1.3",
            "listener": "main", "trace_id": f"{i:032x}"}) + "\n")
PY
gzip -k -1 "$WORK/access.log"
BYTES=$(stat -c %s "$WORK/access.log")
for file in access.log access.log.gz; do
  start=$(date +%s.%N)
  target/release/authgate report "$WORK/$file" --json > /dev/null
  end=$(date +%s.%N)
  python3 -c "
s = $end - $start
print(f'$file: $LINES lines, {$BYTES / 1e6:.0f} MB uncompressed, {s:.2f} s: {$LINES / s / 1e6:.2f} M lines/s, {$BYTES / s / 1e6:.0f} MB/s')"
done
