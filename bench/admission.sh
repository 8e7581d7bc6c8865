#!/usr/bin/env bash
# bench/admission.sh: what budgets and SLOs cost on the request path.
# Runs the same gateway binary with and without a budgets + slos section
# (limits high enough that nothing is refused), in interleaved pairs, on the
# bench mock upstream, pinned like run.sh (gateway + mock on CPU 0, wrk on
# CPU 1), and prints req/s and CPU per request of each run and the ratio of
# the means.
#
#   bash bench/admission.sh [PAIRS=5] [CONNS=16] [SECONDS=5]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAIRS=${1:-5}
C=${2:-16}
D=${3:-5}
BIN=${COSTGATE_BIN:-$ROOT/build/costgate}
T=$(mktemp -d /tmp/costgate-admission.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
cc -O2 -o "$T/mock" "$ROOT/bench/mock_upstream.c"
taskset -c 0 "$T/mock" --port-file "$T/mp" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/mp" ] && break; sleep 0.05; done
MOCK=$(cat "$T/mp")
HASH=$(printf %s cg-bench-key | sha256sum | cut -d' ' -f1)

one() { # $1 = 0|1 budgets
    local dir="$T/run$RANDOM"
    mkdir -p "$dir"
    cat >"$dir/c.yaml" <<Y
server: {listen: "127.0.0.1:0", workers: 1, log_level: warn}
ledger: {path: "$dir/l.db"}
providers:
  - {name: openai, api: openai, base_url: "http://127.0.0.1:$MOCK", api_key_env: X_KEY, models: ["gpt-*"]}
keys:
  - {name: bench, sha256: "$HASH", tenant: bench}
Y
    if [ "$1" = 1 ]; then
        cat >>"$dir/c.yaml" <<Y
budgets:
  default: {max_per_query_usd: "1", daily_max_per_user_usd: "100000"}
  per_tenant: {bench: {monthly_usd: "1000000"}}
  global: {daily_usd: "1000000"}
slos:
  - {name: avg_cost_per_query, target: "0.01", alert_threshold: "0.02"}
Y
    fi
    X_KEY=k taskset -c 0 "$BIN" serve -c "$dir/c.yaml" --port-file "$dir/gp" >/dev/null 2>"$dir/err" &
    local gp=$!
    for _ in $(seq 100); do [ -s "$dir/gp" ] && break; sleep 0.05; done
    local port
    read -r port _ <"$dir/gp"
    local url="http://127.0.0.1:$port/v1/chat/completions"
    taskset -c 1 wrk -t1 -c"$C" -d1s -s "$ROOT/bench/post.lua" "$url" >/dev/null
    local u0 s0 u1 s1 n
    read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u0 s0 _ </proc/$gp/stat
    n=$(taskset -c 1 wrk -t1 -c"$C" -d"${D}s" -s "$ROOT/bench/post.lua" "$url" |
        sed -n 's/^BENCHRESULT requests=\([0-9]*\).*/\1/p')
    read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u1 s1 _ </proc/$gp/stat
    kill "$gp"
    wait "$gp" 2>/dev/null || true
    echo "$1 $((n / D)) $(((u1 + s1 - u0 - s0) * 10000 / n))"
}

echo "budgets rps cpu_us_per_req   ($PAIRS pairs, $C connections, ${D}s each)"
: >"$T/all"
for _ in $(seq "$PAIRS"); do
    one 0 | tee -a "$T/all"
    one 1 | tee -a "$T/all"
done
awk '{n[$1]++; r[$1]+=$2; c[$1]+=$3}
     END {printf "mean off: %d req/s, %d us CPU/req; on: %d req/s, %d us CPU/req; throughput ratio on/off %.3f\n",
          r[0]/n[0], c[0]/n[0], r[1]/n[1], c[1]/n[1], (r[1]/n[1])/(r[0]/n[0])}' "$T/all"
