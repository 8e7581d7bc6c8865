#!/usr/bin/env bash
# setup.sh: installs what costgate needs to build, run and test, and nothing
# that is already there. Debian packages via apt, JS test/data packages via npm.
# Idempotent; safe to run on every `make run` / `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
      libevent-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libsqlite3-dev
      libssl-dev libcmocka-dev sqlite3 nodejs npm nginx-light wrk hyperfine
      ca-certificates curl procps)

missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# nodejs may come from elsewhere (e.g. a preinstalled node with its own npm)
if command -v node >/dev/null && command -v npm >/dev/null; then
    keep=()
    for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || keep+=("$p"); done
    missing=("${keep[@]}")
fi

if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx-light's package starts a default server on :80 where it can; we only
# use nginx as a benchmark baseline with our own config.
if pgrep -x nginx >/dev/null 2>&1 && [[ -f /run/nginx.pid ]]; then
    nginx -s quit 2>/dev/null || true
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "setup: installing npm packages (package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: ok"
