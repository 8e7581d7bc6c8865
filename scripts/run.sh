#!/usr/bin/env bash
# run.sh: starts the gateway with a config (default config/example.yaml) and
# an SQLite ledger under var/. With OPENAI_API_KEY or ANTHROPIC_API_KEY set,
# the providers are the real ones; with neither, it says so and starts the
# bundled mock provider as the upstream so the tour works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-config/example.yaml}"
mkdir -p var
export COSTGATE_PORT="${COSTGATE_PORT:-8080}"
export COSTGATE_ADMIN_PORT="${COSTGATE_ADMIN_PORT:-8081}"

MOCK_PID=""
cleanup() { [[ -n $MOCK_PID ]] && kill "$MOCK_PID" 2>/dev/null || true; }
trap cleanup EXIT

if [[ -z ${OPENAI_API_KEY:-} && -z ${ANTHROPIC_API_KEY:-} ]]; then
    echo "run: neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set:"
    echo "run: starting the bundled mock provider (tests/mock/provider.mjs) as the upstream."
    MOCK_PORT="${COSTGATE_MOCK_PORT:-8090}"
    node tests/mock/provider.mjs --port "$MOCK_PORT" > var/mock.log 2>&1 &
    MOCK_PID=$!
    for _ in $(seq 1 100); do grep -q MOCK_LISTENING var/mock.log 2>/dev/null && break; sleep 0.05; done
    export COSTGATE_OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT"
    export COSTGATE_ANTHROPIC_BASE_URL="http://127.0.0.1:$MOCK_PORT"
    # the mock wants some provider key, as the real APIs do
    export OPENAI_API_KEY="mock-openai-key" ANTHROPIC_API_KEY="mock-anthropic-key"
else
    echo "run: using the real providers (keys from OPENAI_API_KEY / ANTHROPIC_API_KEY)."
fi
echo "run: gateway key for the demo: cg-demo-key   admin key: cg-admin-demo-key"
echo "run: ledger: var/ledger.db   report: ./build/costgate report --by model"
./build/costgate serve -c "$CONFIG"
