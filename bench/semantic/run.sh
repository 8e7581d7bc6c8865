#!/usr/bin/env bash
# bench/semantic/run.sh: what the semantic cache adds to a miss on the request
# path, and what its lookup costs by itself. See bench/README.md.
#
#   bash bench/semantic/run.sh
#
# 1. Request path. Two gateways on the same mock upstream (bench/mock_upstream.c),
#    identical (workers: 1, the exact cache on) except that `sem` has the
#    semantic cache on (built-in embedder, default threshold and gate). wrk
#    sends, over 1 connection, a different 20-word question on every request
#    (QQP questions, bench/semantic/texts.mjs), so every request on `sem` is a
#    full semantic miss: eligibility, partition key, embedding and search on
#    the pool, gate, then the upstream call, then the store indexes the
#    question (on the pool, after the answer). The paths run in interleaved
#    slices (exact, sem, exact, sem, ...). Added latency = sem - exact, at p50
#    and p99, as wrk sees it (median of the slices) and as the gateway logs it
#    (ledger latency_us of the measured rows).
# 2. The lookup alone (BENCH_UNIT=1): sembench embeds and searches 1,000
#    held-out 20-word questions against one partition of 100,000 real
#    questions (built once through the semantic index and kept in
#    BENCH_UNIT_CACHE), single-threaded: p50/p90/p99/max of embedding,
#    search+gate and total, wall and thread CPU.
#
# Environment (defaults in brackets):
#   BENCH_SLICES      interleaved slices per path [6]
#   BENCH_SLICE       seconds per slice [10]
#   BENCH_WARMUP      seconds of warm-up per path, discarded [3]
#   BENCH_SERVER_CPU  CPU for the gateways and the mock [0]
#   BENCH_CLIENT_CPU  CPU for wrk [1]
#   BENCH_UNIT        1 = also run the lookup-alone benchmark [1]
#   BENCH_UNIT_N      vectors in its partition [100000]
#   BENCH_UNIT_CACHE  where its built partition is kept [/tmp/costgate-sembench]
#   COSTGATE_BIN      gateway binary [build/costgate] (its build dir has libcostgate_core.a)
# Needs: wrk, taskset, sqlite3, node, cc, ../shared/data (QQP), var/models/use-lite.bin.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/semantic"
BIN=${COSTGATE_BIN:-$ROOT/build/costgate}
MODEL=${BENCH_MODEL:-$ROOT/var/models/use-lite.bin}
SLICES=${BENCH_SLICES:-6}
SLICE=${BENCH_SLICE:-10}
WARMUP=${BENCH_WARMUP:-3}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
UNIT=${BENCH_UNIT:-1}
UNIT_N=${BENCH_UNIT_N:-100000}
UNIT_CACHE=${BENCH_UNIT_CACHE:-/tmp/costgate-sembench}
KEY=cg-bench-key
ADMIN_KEY=cg-bench-admin
RANGE_EX=60000 # questions per slice of the exact-only path (~4k req/s at 1 connection)
RANGE_SEM=4000 # per slice of the semantic path (~200 req/s); a slice that sends more repeats
T0=$(date +%s)

log() { printf '[semantic-bench %3ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cc wrk taskset sqlite3 node sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
[ -x "$BIN" ] || die "$BIN not found: build the gateway first"
[ -f "$MODEL" ] || die "$MODEL not found: run scripts/setup.sh"

TMP=$(mktemp -d /tmp/costgate-semantic-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_file() { for _ in $(seq $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

log "making $(((SLICES + 1) * RANGE_EX)) + $(((SLICES + 1) * RANGE_SEM)) distinct 20-word questions"
node "$HERE/texts.mjs" queries $(((SLICES + 1) * RANGE_EX)) 0 --json >"$TMP/q-exact.txt"
# the semantic path's start with a different question each, so that no two
# are near-duplicates (a hit would be faster than the misses measured)
node "$HERE/texts.mjs" queries $(((SLICES + 1) * RANGE_SEM)) 0 --json --distinct-first >"$TMP/q-sem.txt"

cc -O2 -Wall -Wextra -o "$TMP/mock_upstream" "$ROOT/bench/mock_upstream.c"
taskset -c "$SCPU" "$TMP/mock_upstream" --port 0 --port-file "$TMP/mock.port" >/dev/null &
PIDS+=($!)
wait_file "$TMP/mock.port" 5 || die "mock did not start"
MOCK_PORT=$(cat "$TMP/mock.port")

KEY_SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
ADMIN_SHA=$(printf %s "$ADMIN_KEY" | sha256sum | cut -d' ' -f1)
start_gateway() { # name cache-yaml -> GW_PORT GW_ADMIN GW_LEDGER GW_PID
    local d="$TMP/$1"
    mkdir -p "$d"
    cat >"$d/costgate.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  workers: 1
  log_level: warn
admin:
  listen: "127.0.0.1:0"
  key_sha256: "$ADMIN_SHA"
ledger:
  path: "$d/ledger.db"
providers:
  - name: openai
    api: openai
    base_url: "http://127.0.0.1:$MOCK_PORT"
    api_key_env: CG_BENCH_OPENAI_KEY
    models: ["gpt-*"]
keys:
  - name: bench
    sha256: "$KEY_SHA"
    tenant: bench
    user: bench-user
    segment: default
$2
EOF
    CG_BENCH_OPENAI_KEY=sk-bench taskset -c "$SCPU" "$BIN" serve -c "$d/costgate.yaml" \
        --port-file "$d/port" >"$d/stdout" 2>"$d/stderr" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_file "$d/port" 20 || die "costgate $1 did not start: $(cat "$d/stderr")"
    GW_PORT=$(awk '{print $1}' "$d/port")
    GW_ADMIN=$(awk '{print $2}' "$d/port")
    GW_LEDGER="$d/ledger.db"
}
start_gateway exact "cache: {}"
EX_PORT=$GW_PORT EX_LEDGER=$GW_LEDGER
start_gateway sem "cache:
  semantic:
    enabled: true
    model_file: \"$MODEL\"
    index_dir: \"$TMP/sem/index\""
SEM_PORT=$GW_PORT SEM_ADMIN=$GW_ADMIN SEM_LEDGER=$GW_LEDGER
log "mock :$MOCK_PORT, exact-cache gateway :$EX_PORT, semantic gateway :$SEM_PORT (server CPU $SCPU, wrk CPU $CCPU)"

wrk_run() { # port seconds offset queries-file -> BENCHRESULT line
    BENCH_KEY=$KEY BENCH_QUERIES="$4" BENCH_OFFSET=$3 taskset -c "$CCPU" \
        timeout $(($2 + 30)) wrk -t1 -c1 --timeout 10s --latency -s "$HERE/post.lua" -d"$2s" \
        "http://127.0.0.1:$1" 2>&1 | grep '^BENCHRESULT' || true
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before: $LOAD_BEFORE; warm-up ${WARMUP}s each"
wrk_run "$EX_PORT" "$WARMUP" 0 "$TMP/q-exact.txt" >/dev/null
wrk_run "$SEM_PORT" "$WARMUP" 0 "$TMP/q-sem.txt" >/dev/null
sleep 1
START_MS=$(($(date +%s%N) / 1000000))
printf 'path\tslice\trequests\tp50_us\tp90_us\tp99_us\terrors\n' >"$TMP/slices.tsv"
for k in $(seq "$SLICES"); do
    for path in exact sem; do
        if [ $path = exact ]; then
            line=$(wrk_run "$EX_PORT" "$SLICE" $((k * RANGE_EX)) "$TMP/q-exact.txt")
        else
            line=$(wrk_run "$SEM_PORT" "$SLICE" $((k * RANGE_SEM)) "$TMP/q-sem.txt")
        fi
        [ -n "$line" ] || die "wrk failed ($path, slice $k)"
        eval "$(echo "$line" | sed 's/^BENCHRESULT //' | tr ' ' '\n' | sed 's/^/w_/')"
        # shellcheck disable=SC2154
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $path "$k" "$w_requests" "$w_p50_us" "$w_p90_us" \
            "$w_p99_us" "$w_errors" >>"$TMP/slices.tsv"
        log "slice $k $path: $w_requests requests, p50 $w_p50_us us, p99 $w_p99_us us"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 1

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
col() { awk -F'\t' -v p="$1" -v c="$2" '$1 == p {print $c}' "$TMP/slices.tsv"; }
# server-side: latency_us of the measured misses
ledger_pct() { # ledger pct
    sqlite3 "$1" "SELECT latency_us FROM ledger WHERE ts_ms >= $START_MS AND status = 'ok'
        AND cache = 'miss' ORDER BY latency_us LIMIT 1 OFFSET (SELECT CAST(COUNT(*) * $2 / 100
        AS INT) FROM ledger WHERE ts_ms >= $START_MS AND status = 'ok' AND cache = 'miss')"
}
ledger_n() { sqlite3 "$1" "SELECT COUNT(*) FROM ledger WHERE ts_ms >= $START_MS"; }
ledger_cache() { sqlite3 "$1" "SELECT cache || ':' || COUNT(*) FROM ledger WHERE ts_ms >= $START_MS GROUP BY cache" | tr '\n' ' '; }

EX50=$(col exact 4 | median) EX99=$(col exact 6 | median)
SE50=$(col sem 4 | median) SE99=$(col sem 6 | median)
EXN=$(col exact 3 | awk '{s += $1} END {print s}') SEN=$(col sem 3 | awk '{s += $1} END {print s}')
LE50=$(ledger_pct "$EX_LEDGER" 50) LE99=$(ledger_pct "$EX_LEDGER" 99)
LS50=$(ledger_pct "$SEM_LEDGER" 50) LS99=$(ledger_pct "$SEM_LEDGER" 99)
STATS=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$SEM_ADMIN/admin/cache/stats" |
    node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8")).semantic;
      const l=s.lookup_us;
      console.log(`lookups ${s.lookups}, hits ${s.hits}, gate refusals ${s.gate_rejected}, skipped (queue full) ${s.skipped_queue_full}, embedding failures ${s.embed_errors}, indexed ${s.indexed}, cached queries ${s.entries}; time a lookup held its request (stage start to decision, 50 µs buckets, whole run incl. warm-up): p50 ${l.p50} µs, p90 ${l.p90} µs, p99 ${l.p99} µs`)')

BUILD_DIR=$(dirname "$BIN")
{
    echo "### Request path: a semantic miss vs the same gateway without it ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Command: \`bash bench/semantic/run.sh\` (BENCH_SLICES=$SLICES BENCH_SLICE=$SLICE; binary $(sha256sum "$BIN" | cut -c1-12), $(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo '?') build)."
    echo "$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); gateways and mock on CPU $SCPU, wrk on CPU $CCPU; 1 connection; load average before $LOAD_BEFORE, after $LOAD_AFTER."
    echo "Every request a different 20-word question (QQP), so every request is an exact miss, stored; on \`semantic\` also a semantic lookup (miss) and an indexed store."
    echo
    echo "| path | requests | p50 µs (wrk) | p99 µs (wrk) | p50 µs (ledger) | p99 µs (ledger) |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| exact cache only | $EXN | $EX50 | $EX99 | $LE50 | $LE99 |"
    echo "| exact + semantic | $SEN | $SE50 | $SE99 | $LS50 | $LS99 |"
    echo "| **added by the semantic miss** | | **$((SE50 - EX50))** | **$((SE99 - EX99))** | **$((LS50 - LE50))** | **$((LS99 - LE99))** |"
    echo
    echo "wrk: median of the $SLICES slices' p50 / p99; ledger: latency_us of all measured rows (start to settle). Semantic gateway: $STATS. Measured rows: exact $(ledger_cache "$EX_LEDGER"); semantic $(ledger_cache "$SEM_LEDGER")."
    echo
    echo "Per slice (requests, p50, p99 µs):"
    echo
    echo '```'
    column -t -s$'\t' "$TMP/slices.tsv"
    echo '```'
} >"$TMP/report.md"

if [ "$UNIT" = 1 ]; then
    log "the lookup alone: sembench ($UNIT_N vectors)"
    [ -f "$BUILD_DIR/libcostgate_core.a" ] || die "$BUILD_DIR/libcostgate_core.a not found"
    cc -O2 -D_GNU_SOURCE -I"$ROOT/src" "$HERE/sembench.c" "$BUILD_DIR/libcostgate_core.a" \
        $(pkg-config --libs libevent libevent_pthreads jansson yaml-0.1 sqlite3 openssl libutf8proc) \
        -lm -lpthread -o "$TMP/sembench"
    node "$HERE/texts.mjs" index "$UNIT_N" >"$TMP/index.txt"
    node "$HERE/texts.mjs" queries 1000 "$UNIT_N" >"$TMP/unit_queries.txt"
    L0=$(cut -d' ' -f1-3 /proc/loadavg)
    taskset -c "$SCPU" "$TMP/sembench" --model "$MODEL" --index "$TMP/index.txt" \
        --queries "$TMP/unit_queries.txt" --n "$UNIT_N" --cache "$UNIT_CACHE" >"$TMP/unit.txt"
    {
        echo
        echo "### The lookup alone: 20-word questions against a partition of $UNIT_N vectors"
        echo
        echo "\`sembench\` (bench/semantic/sembench.c), single thread on CPU $SCPU, load average $L0 before: per question cg_embed then cg_semantic_lookup (threshold 0.98, default gate), as the pool runs them; 1,000 held-out questions, 20 words each; the partition holds $UNIT_N real questions (QQP) embedded by the built-in embedder."
        echo
        echo '```'
        head -n -1 "$TMP/unit.txt"
        echo '```'
    } >>"$TMP/report.md"
fi
cat "$TMP/report.md"
mkdir -p "$ROOT/bench/out"
cp "$TMP/report.md" "$ROOT/bench/out/semantic-$(date -u +%Y%m%d-%H%M%S).md"
