#!/usr/bin/env bash
# The whole test suite on a machine that has only the Rust toolchain:
# installs the real parts the integration tests start (redis-server, nginx,
# caddy, chromium + chromium-driver, the npm packages of the test OpenID
# provider) when they are missing, then runs `cargo test`. `.ci/run` calls
# exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real parts the tests start as child processes (never as services):
# redis-server (scale-out), nginx and caddy (forward-auth front proxies),
# chromium and chromedriver (browser sign-in), node and npm (the test
# OpenID provider, tests/idp).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (the tests start real ones)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # policy-rc.d 101: Debian's packages must not start system services here.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The test OpenID provider: oidc-provider from the npm registry, as locked.
if [ ! -d tests/idp/node_modules/oidc-provider ]; then
  echo "== npm ci in tests/idp (the test OpenID provider)"
  (cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo test "$@"
