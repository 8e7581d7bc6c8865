#!/usr/bin/env bash
# bench/profile.sh: where costgate spends its CPU per request, on the same
# mock upstream and pinning as bench/run.sh (gateway + mock on CPU 0, wrk on
# CPU 1, workers 1, ledger on).
#
#   bash bench/profile.sh callgrind [json|stream] [CONNS] [SECONDS]
#       valgrind --tool=callgrind over a measured window (counters zeroed
#       after a warm-up): prints user-space instructions (Ir) per request and
#       the top functions by inclusive Ir per request. Instruction counts do
#       not depend on machine noise: use this to compare two builds.
#   bash bench/profile.sh perf [json|stream] [CONNS] [SECONDS]
#       perf record --call-graph dwarf of the gateway under load; prints the
#       top symbols (children) and leaves bench/out/perf-<mode>.data.
#   bash bench/profile.sh syscalls [json|stream] [CONNS] [SECONDS]
#       strace -c -f: system calls per request.
#
# COSTGATE_BIN selects the binary (default build/costgate); BENCH_CACHE=1
# turns the exact cache on (every request after the first is a hit);
# BENCH_TIER=1 turns model tiering on with the config of bench/run.sh's
# costgate-tier cell (every request classified and routed, bandit on, cascade
# off). Bounded: about 20 s (perf, syscalls) or 40 s (callgrind); every
# process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
TOOL=${1:-callgrind}
MODE=${2:-json}
C=${3:-4}
D=${4:-8}
BIN=${COSTGATE_BIN:-$ROOT/build/costgate}
KEY=cg-bench-key
mkdir -p "$BENCH/out"
[ -x "$BIN" ] || { echo "$BIN not found (make build)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/costgate-profile.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

cc -O2 -o "$TMP/mock_upstream" "$BENCH/mock_upstream.c"
taskset -c 0 "$TMP/mock_upstream" --port-file "$TMP/mock.port" >/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/mock.port" ] && break; sleep 0.05; done
MOCK_PORT=$(cat "$TMP/mock.port")

cat >"$TMP/costgate.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  workers: 1
  log_level: warn
ledger:
  path: "$TMP/ledger.db"
providers:
  - name: openai
    api: openai
    base_url: "http://127.0.0.1:$MOCK_PORT"
    api_key_env: CG_BENCH_OPENAI_KEY
    models: ["gpt-*"]
keys:
  - name: bench
    sha256: "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)"
    tenant: bench
    user: bench-user
EOF
# BENCH_CACHE=1: the exact cache on; wrk's fixed body is then served from it
# (the first request stores it), so this profiles the cache-hit path.
[ "${BENCH_CACHE:-0}" = 1 ] && printf 'cache: {}\n' >>"$TMP/costgate.yaml"
# BENCH_TIER=1: the tiering block of bench/run.sh's costgate-tier cell.
if [ "${BENCH_TIER:-0}" = 1 ]; then
    cat >>"$TMP/costgate.yaml" <<EOF
tiering:
  default_tier: small
  routable_keys: [bench]
  tiers:
    small: {openai: gpt-4o-mini}
    medium: {openai: gpt-4o}
  rules:
    - {intent: small_talk, tier: small}
  cascade: {enabled: false}
  bandit: {enabled: true, explore_max: 0.1}
EOF
fi

PRE=()
[ "$TOOL" = callgrind ] && PRE=(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out")
CG_BENCH_OPENAI_KEY=sk-bench taskset -c 0 "${PRE[@]}" "$BIN" serve -c "$TMP/costgate.yaml" \
    --port-file "$TMP/port" >"$TMP/gw.log" 2>&1 &
GW=$!
PIDS+=("$GW")
for _ in $(seq 300); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { cat "$TMP/gw.log" >&2; exit 1; }
PORT=$(awk '{print $1}' "$TMP/port")
URL="http://127.0.0.1:$PORT/v1/chat/completions"
STREAM=0
[ "$MODE" = stream ] && STREAM=1
wrk_run() { # seconds
    BENCH_KEY=$KEY BENCH_STREAM=$STREAM taskset -c 1 timeout $(($1 + 20)) wrk -t1 -c"$C" \
        -d"$1"s --timeout 10s -s "$BENCH/post.lua" "$URL"
}
rows() { sqlite3 "$TMP/ledger.db" 'SELECT count(*) FROM ledger'; }

wrk_run 2 >/dev/null
sleep 0.5
case "$TOOL" in
callgrind)
    callgrind_control -z "$GW" >/dev/null 2>&1
    n0=$(rows)
    wrk_run "$D" | grep BENCHRESULT | cut -d' ' -f2
    sleep 1
    n=$(($(rows) - n0))
    callgrind_control -d "$GW" >/dev/null 2>&1
    sleep 0.5
    cp "$TMP/cg.out.1" "$BENCH/out/callgrind-$MODE.out"
    tot=$(callgrind_annotate "$TMP/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "requests (ledger rows) in the window: $n"
    echo "user-space instructions per request: $((tot / n)) Ir"
    echo "top functions, inclusive Ir per request (file: bench/out/callgrind-$MODE.out):"
    callgrind_annotate --inclusive=yes --threshold=99.5 "$TMP/cg.out.1" 2>/dev/null |
        sed -n '/file:function/,$p' | awk -v n="$n" 'NR > 2 && $1 ~ /^[0-9,]+$/ {
            x = $1; gsub(",", "", x); f = $NF; $1 = ""; $2 = ""; sub(/^ +/, "")
            printf "%9d  %s\n", x / n, $0 }' | grep '\[' | grep -v ' ???:0x' | head -60
    ;;
perf)
    wrk_run "$D" >"$TMP/wrk.out" &
    W=$!
    sleep 2
    perf record --call-graph dwarf,16384 -F 1500 -p "$GW" -o "$BENCH/out/perf-$MODE.data" \
        -- sleep $((D > 6 ? D - 4 : 2)) 2>&1 | tail -1
    wait "$W"
    grep BENCHRESULT "$TMP/wrk.out" | cut -d' ' -f2-3
    perf report -i "$BENCH/out/perf-$MODE.data" --children --sort dso,sym --stdio -g none \
        2>/dev/null | grep -E '^ +[0-9]' | grep -v ' 0x0000' | head -60
    ;;
syscalls)
    wrk_run "$D" >"$TMP/wrk.out" &
    W=$!
    sleep 2
    n0=$(rows)
    timeout 3 strace -f -c -p "$GW" -o "$TMP/strace.out" 2>/dev/null || true
    n=$(($(rows) - n0))
    wait "$W"
    echo "requests during the trace: $n"
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 { printf "%-16s %6.2f per request\n", $NF, $4 / n }' \
        "$TMP/strace.out" | sort -k2 -rn
    ;;
*)
    echo "usage: $0 callgrind|perf|syscalls [json|stream] [CONNS] [SECONDS]" >&2
    exit 2
    ;;
esac
