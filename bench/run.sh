#!/usr/bin/env bash
# bench/run.sh: costgate's added latency and CPU per request, against the mock
# upstream directly and against nginx as a plain reverse proxy, all on the
# same mock, in one run. See bench/README.md.
#
#   bash bench/run.sh
#
# Environment (defaults in brackets):
#   BENCH_DURATION   seconds measured per path and cell [9]
#   BENCH_SLICES     interleaved slices those seconds are split into [3]
#   BENCH_WARMUP     seconds of warm-up per path and cell, discarded [1]
#   BENCH_CONNS      connection counts ["1 16 64"]
#   BENCH_MODES      "json stream" [both]
#   BENCH_SERVER_CPU CPU for the server under test and the mock [0]
#   BENCH_CLIENT_CPU CPU for wrk [1]
#   BENCH_WORKERS2   1 = extra costgate row with workers: 2 at 16 connections [1]
#   BENCH_PROMPT_BYTES  pad the user message to about this size [unset: ~190-byte body]
#   BENCH_CACHE_MODES   exact-cache cells ["cache-hit cache-miss"; "" = none]
#   BENCH_TIER_MODES    model-tiering cells ["tiering tiering-real"; "" = none]:
#                    tiering = the fixed short body; tiering-real = Arena-Hard's
#                    1,250 prompts in turn (mean 873 bytes; needs ../shared/data)
#   BENCH_CACHE_CONNS   connection counts of the cache cells ["16"]
#   BENCH_CELL_SLICES   rounds of the cache and tiering cells, whose verdicts
#                    are paired per-round ratios with a confidence interval
#                    (bench/paired.awk) [30]
#   BENCH_CELL_SLICE    seconds of each path's slice in those rounds [1]: many
#                    short rounds pair paths closely in time, so host noise
#                    (steal bursts last seconds) hits both sides of a ratio
#   BENCH_AA         1 = an A/A control in the tiering cell: a second plain
#                    twin (costgate-twin), so the run shows how far two
#                    identical gateways drift apart [1]
#   COSTGATE_BIN     gateway binary [build/costgate, release build]
#
# Writes bench/out/results-<date>.md (+ .tsv) and prints the table. Every
# process it starts is stopped on exit (trap EXIT).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
DURATION=${BENCH_DURATION:-9}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-"1 16 64"}
MODES=${BENCH_MODES:-"json stream"}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
WORKERS2=${BENCH_WORKERS2:-1}
CACHE_MODES=${BENCH_CACHE_MODES-"cache-hit cache-miss"}
TIER_MODES=${BENCH_TIER_MODES-"tiering tiering-real"}
DATA=${BENCH_DATA:-$ROOT/../shared/data}
CACHE_CONNS=${BENCH_CACHE_CONNS:-16}
AA=${BENCH_AA:-1}
CELL_SLICES=${BENCH_CELL_SLICES:-30}
CELL_SLICE=${BENCH_CELL_SLICE:-1}
BIN=${COSTGATE_BIN:-$ROOT/build/costgate}
KEY=cg-bench-key
OUTDIR="$BENCH/out"
STAMP=$(date -u +%Y%m%d-%H%M%S)
REPORT="$OUTDIR/results-$STAMP.md"
TSV="$OUTDIR/results-$STAMP.tsv"
T0=$(date +%s)

log() { printf '[bench %3ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cc wrk nginx taskset sqlite3 sha256sum awk; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install wrk nginx-light sqlite3 ...)"
done
[ -x "$BIN" ] || die "$BIN not found: build the gateway first (make build)"
BIN_ID="$(sha256sum "$BIN" | cut -c1-12), built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')"
NCPU=$(nproc)
[ "$SCPU" -lt "$NCPU" ] && [ "$CCPU" -lt "$NCPU" ] || die "need CPUs $SCPU and $CCPU (nproc=$NCPU)"

TMP=$(mktemp -d /tmp/costgate-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
    fi
}

wait_file() { # file, seconds
    for _ in $(seq $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done
    return 1
}

wait_http() { # port
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# utime+stime (clock ticks) summed over the given pids
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        # fields after the ")" of comm: utime is the 12th, stime the 13th
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

# --- build and start the mock upstream -----------------------------------
log "building the mock upstream"
cc -O2 -Wall -Wextra -o "$TMP/mock_upstream" "$BENCH/mock_upstream.c"
taskset -c "$SCPU" "$TMP/mock_upstream" --port 0 --port-file "$TMP/mock.port" >/dev/null &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_file "$TMP/mock.port" 5 || die "mock did not start"
MOCK_PORT=$(cat "$TMP/mock.port")
log "mock upstream pid $MOCK_PID port $MOCK_PORT (CPU $SCPU)"

# --- nginx ---------------------------------------------------------------
NGX="$TMP/nginx"
mkdir -p "$NGX"
NGX_PORT=$(free_port)
NGX_SPORT=$(free_port)
sed -e "s|@DIR@|$NGX|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" -e "s|@PORT_BUFFERED@|$NGX_PORT|g" \
    -e "s|@PORT_STREAM@|$NGX_SPORT|g" "$BENCH/nginx.conf.in" >"$NGX/nginx.conf"
taskset -c "$SCPU" nginx -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_http "$NGX_PORT" && wait_http "$NGX_SPORT" || die "nginx did not start: $(cat "$NGX/error.log" 2>/dev/null)"
sleep 0.2
NGX_PIDS="$NGX_PID $(pgrep -P "$NGX_PID" | tr '\n' ' ')"
log "nginx pids $NGX_PIDS ports $NGX_PORT (buffered) $NGX_SPORT (stream)"

# --- costgate ------------------------------------------------------------
KEY_SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
start_gateway() { # name workers [extra yaml] -> sets GW_PID GW_PORT GW_LEDGER
    local d="$TMP/$1"
    mkdir -p "$d"
    cat >"$d/costgate.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  workers: $2
  log_level: warn
ledger:
  path: "$d/ledger.db"
pricing:
  unknown_model: reject
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
EOF
    if [ -n "${3:-}" ]; then printf '%s\n' "$3" >>"$d/costgate.yaml"; fi
    CG_BENCH_OPENAI_KEY=sk-bench-upstream taskset -c "$SCPU" "$BIN" serve -c "$d/costgate.yaml" \
        --port-file "$d/port" >"$d/stdout" 2>"$d/stderr" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_file "$d/port" 10 || die "costgate did not start: $(cat "$d/stderr")"
    GW_PORT=$(awk '{print $1}' "$d/port")
    GW_LEDGER="$d/ledger.db"
    log "costgate ($1, workers $2) pid $GW_PID port $GW_PORT ledger $GW_LEDGER"
}
start_gateway cg1 1
CG1_PID=$GW_PID CG1_PORT=$GW_PORT CG1_LEDGER=$GW_LEDGER
if [ "$WORKERS2" = 1 ]; then
    start_gateway cg2 2
    CG2_PID=$GW_PID CG2_PORT=$GW_PORT CG2_LEDGER=$GW_LEDGER
fi
if [ -n "$CACHE_MODES" ]; then # the exact cache on, defaults otherwise
    start_gateway cgc 1 "cache: {}"
    CGC_PID=$GW_PID CGC_PORT=$GW_PORT CGC_LEDGER=$GW_LEDGER
fi

if [[ " $TIER_MODES " == *" tiering-real "* ]]; then # the prompts, one JSON string a line
    sed -n 's/.*"prompt":\(".*"\)}$/\1/p' "$DATA"/arena-hard/v0.1_question.jsonl \
        "$DATA"/arena-hard/v2.0_question.jsonl >"$TMP/prompts.txt" 2>/dev/null || true
    [ "$(wc -l <"$TMP/prompts.txt")" -gt 1000 ] || die "no Arena-Hard prompts under $DATA/arena-hard"
fi
if [ -n "$TIER_MODES" ]; then # tiering on: every request routed, no cascade
    # and its plain twin, started alongside and idle until the same cell, so
    # the two differ in tiering only (not in ledger size or history)
    start_gateway cgtp 1
    CGTP_PID=$GW_PID CGTP_PORT=$GW_PORT CGTP_LEDGER=$GW_LEDGER
    if [ "$AA" = 1 ]; then # the A/A control: another plain twin
        start_gateway cgtq 1
        CGTQ_PID=$GW_PID CGTQ_PORT=$GW_PORT CGTQ_LEDGER=$GW_LEDGER
    fi
    start_gateway cgt 1 "tiering:
  default_tier: small
  routable_keys: [bench]
  tiers:
    small: {openai: gpt-4o-mini}
    medium: {openai: gpt-4o}
  rules:
    - {intent: small_talk, tier: small}
  cascade: {enabled: false}
  bandit: {enabled: true, explore_max: 0.1}"
    CGT_PID=$GW_PID CGT_PORT=$GW_PORT CGT_LEDGER=$GW_LEDGER
fi

ledger_counts() { # ledger -> "total ok"
    sqlite3 "$1" "SELECT count(*), coalesce(sum(status='ok' AND http_status=200),0) FROM ledger" |
        tr '|' ' '
}

# --- measured slices -------------------------------------------------------
# Each (mode, connections) cell: one discarded warm-up per path, then SLICES
# rounds in which every path runs DURATION/SLICES seconds in turn, so a burst
# of outside load hits all paths alike. Per path: requests, CPU and ledger
# rows are summed over its slices; p50/p99 are the medians of the slices'.
printf 'mode\tconns\tpath\tslice\trequests\tduration_us\tp50_us\tp99_us\terrors\tserver_ticks\tmock_ticks\tledger_rows\tledger_ok\n' >"$TMP/slices.tsv"

wrk_cmd() { # seconds conns url stream [flags: u = unique bodies, n = no-store, r = real prompts]
    local flags=${5:--}
    BENCH_PROMPTS=$([[ $flags == *r* ]] && echo "$TMP/prompts.txt" || true) BENCH_KEY=$KEY BENCH_STREAM=$4 BENCH_UNIQUE=$([[ $flags == *u* ]] && echo 1 || echo 0) \
        BENCH_NO_STORE=$([[ $flags == *n* ]] && echo 1 || echo 0) taskset -c "$CCPU" timeout $(($1 + 30)) wrk -t1 -c"$2" \
        --timeout 10s --latency -s "$BENCH/post.lua" -d"$1s" "$3"
}

warm() { # mode conns url [flags]
    local stream=0
    [ "$1" = stream ] && stream=1
    wrk_cmd "$WARMUP" "$2" "$3" "$stream" "${4:--}" >/dev/null 2>&1 || true
}

slice() { # mode conns path slice# url server-pids ledger|- [flags]
    local mode=$1 c=$2 path=$3 k=$4 url=$5 spids=$6 ledger=$7 flags=${8:--}
    local stream=0
    [ "$mode" = stream ] && stream=1
    local l0="0 0" l1="0 0" s0 m0 s1 m1
    [ "$ledger" != - ] && l0=$(ledger_counts "$ledger")
    s0=$(cpu_ticks $spids)
    m0=$(cpu_ticks "$MOCK_PID")
    wrk_cmd "$SLICE" "$c" "$url" "$stream" "$flags" >"$TMP/wrk.out" 2>&1 || true
    s1=$(cpu_ticks $spids)
    m1=$(cpu_ticks "$MOCK_PID")
    local line
    line=$(grep '^BENCHRESULT' "$TMP/wrk.out" || true)
    if [ -z "$line" ]; then
        log "wrk failed for $mode c=$c $path:"
        cat "$TMP/wrk.out" >&2
        exit 1
    fi
    local non2xx
    non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$TMP/wrk.out")
    # sets w_requests, w_duration_us, w_p50_us, w_p99_us, w_err_* from post.lua's done()
    eval "$(echo "$line" | sed 's/^BENCHRESULT //' | tr ' ' '\n' | sed 's/^/local w_/')"
    # shellcheck disable=SC2154
    local errors=$((w_err_connect + w_err_read + w_err_write + w_err_status + w_err_timeout + ${non2xx:-0}))
    if [ "$ledger" != - ]; then
        sleep 0.3 # requests wrk abandoned at its deadline settle (as client_disconnected)
        l1=$(ledger_counts "$ledger")
    fi
    # shellcheck disable=SC2154
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$c" "$path" "$k" \
        "$w_requests" "$w_duration_us" "$w_p50_us" "$w_p99_us" "$errors" $((s1 - s0)) $((m1 - m0)) \
        $((${l1% *} - ${l0% *})) $((${l1#* } - ${l0#* })) >>"$TMP/slices.tsv"
}

# One (mode, connections) cell over the paths in ${paths[@]}, each
# "name url server-pids ledger|- [flags]".
run_cell() { # mode conns [rounds, default SLICES] [seconds per slice, default SLICE]
    local mode=$1 c=$2 rounds=${3:-$SLICES} p k
    local SLICE=${4:-$SLICE} # slice() reads it
    log "$mode, $c connection(s)"
    for p in "${paths[@]}"; do
        set -- $p
        warm "$mode" "$c" "$2/v1/chat/completions" "${5:--}"
    done
    sleep 0.3
    # round k starts at path (k-1) mod n: no path always runs first or right
    # after the same neighbour (order effects cancel over the rounds)
    local np=${#paths[@]} j
    for k in $(seq "$rounds"); do
        for j in $(seq 0 $((np - 1))); do
            set -- ${paths[$(((k - 1 + j) % np))]}
            slice "$mode" "$c" "$1" "$k" "$2/v1/chat/completions" "${3//,/ }" "$4" "${5:--}"
        done
    done
    # per-path summary of this cell
    awk -F'\t' -v mode="$mode" -v c="$c" '$1 == mode && $2 == c {
        n[$3] += $5; d[$3] += $6; e[$3] += $9; if (!($3 in seen)) { seen[$3] = 1; o[++m] = $3 }
        r = $5 / ($6 / 1e6); if (!($3 in lo) || r < lo[$3]) lo[$3] = r; if (r > hi[$3]) hi[$3] = r
    } END { for (i = 1; i <= m; i++) { p = o[i]
        printf "  %-10s c=%-3s %-16s %8.0f req/s (slices %.0f..%.0f)  err %d\n", mode, c, p, n[p] / (d[p] / 1e6), lo[p], hi[p], e[p] } }' \
        "$TMP/slices.tsv" >&2
}

SLICES=${BENCH_SLICES:-3}
SLICE=$(((DURATION + SLICES - 1) / SLICES))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before: $LOAD_BEFORE; $SLICES slices of ${SLICE}s per path and cell, ${WARMUP}s warm-up"
awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l > 1.0) }' &&
    log "warning: the machine is busy (load ${LOAD_BEFORE%% *}); numbers will be noisy"
for mode in $MODES; do
    for c in $CONNS; do
        if [ "$mode" = stream ]; then np=$NGX_SPORT; else np=$NGX_PORT; fi
        # name url server-pids ledger
        paths=("direct http://127.0.0.1:$MOCK_PORT $MOCK_PID -"
            "nginx http://127.0.0.1:$np ${NGX_PIDS// /,} -"
            "costgate http://127.0.0.1:$CG1_PORT $CG1_PID $CG1_LEDGER")
        if [ "$WORKERS2" = 1 ] && [ "$c" = 16 ]; then
            paths+=("costgate-w2 http://127.0.0.1:$CG2_PORT $CG2_PID $CG2_LEDGER")
        fi
        run_cell "$mode" "$c"
    done
done
# The exact cache (docs/cache.md), non-streaming bodies:
#  cache-hit   the same body on every request: costgate-hit (cache on) serves
#              every request after the first from the cache, never touching
#              the mock; next to nginx and the plain proxy
#  cache-miss  every body unique (a miss that is stored) on the cache-on
#              gateway (costgate-miss) and the plain proxy (costgate), and
#              the fixed body with "Cache-Control: no-store" (costgate-nostore)
for mode in $CACHE_MODES; do
    for c in $CACHE_CONNS; do
        case "$mode" in
        cache-hit)
            paths=("direct http://127.0.0.1:$MOCK_PORT $MOCK_PID - -"
                "nginx http://127.0.0.1:$NGX_PORT ${NGX_PIDS// /,} - -"
                "costgate http://127.0.0.1:$CG1_PORT $CG1_PID $CG1_LEDGER -"
                "costgate-hit http://127.0.0.1:$CGC_PORT $CGC_PID $CGC_LEDGER -")
            ;;
        cache-miss)
            paths=("direct http://127.0.0.1:$MOCK_PORT $MOCK_PID - u"
                "nginx http://127.0.0.1:$NGX_PORT ${NGX_PIDS// /,} - u"
                "costgate http://127.0.0.1:$CG1_PORT $CG1_PID $CG1_LEDGER u"
                "costgate-miss http://127.0.0.1:$CGC_PORT $CGC_PID $CGC_LEDGER u"
                "costgate-nostore http://127.0.0.1:$CGC_PORT $CGC_PID $CGC_LEDGER un")
            ;;
        *) die "unknown cache mode $mode (cache-hit, cache-miss)" ;;
        esac
        run_cell "$mode" "$c" "$CELL_SLICES" "$CELL_SLICE"
    done
done
# Model tiering (docs/routing.md), non-streaming: costgate-tier routes every
# request (the bench key may be re-routed): classifier, rules, bandit and the
# model rewrite, with the cascade off so each request is one upstream call,
# next to nginx and a plain gateway started with it (costgate, here the twin
# cgtp: same age, same empty ledger at the start of the cell).
for mode in $TIER_MODES; do
    case "$mode" in
    tiering) fl=- ;;
    tiering-real) fl=r ;;
    *) die "unknown tiering mode $mode (tiering, tiering-real)" ;;
    esac
    for c in $CACHE_CONNS; do
        paths=("nginx http://127.0.0.1:$NGX_PORT ${NGX_PIDS// /,} - $fl"
            "costgate http://127.0.0.1:$CGTP_PORT $CGTP_PID $CGTP_LEDGER $fl"
            "costgate-tier http://127.0.0.1:$CGT_PORT $CGT_PID $CGT_LEDGER $fl")
        [ "$AA" = 1 ] && paths+=("costgate-twin http://127.0.0.1:$CGTQ_PORT $CGTQ_PID $CGTQ_LEDGER $fl")
        run_cell "$mode" "$c" "$CELL_SLICES" "$CELL_SLICE"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
log "load after: $LOAD_AFTER"

# the gateway must still be healthy and silent about errors
for d in cg1 cg2 cgc cgt cgtp cgtq; do
    [ -f "$TMP/$d/stderr" ] || continue
    if grep -qiE 'error|warn' "$TMP/$d/stderr"; then
        log "costgate $d stderr:"
        grep -iE 'error|warn' "$TMP/$d/stderr" | sort | uniq -c | sort -rn | head -20 >&2
    fi
done

# --- report ------------------------------------------------------------------
mkdir -p "$OUTDIR"
# slices -> one row per (mode, conns, path)
awk -F'\t' -v hz="$HZ" 'function median(s,   a, n, i, j, t) {
        n = split(s, a, " ")
        for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : int((a[n / 2] + a[n / 2 + 1]) / 2)
    }
    NR == 1 { next }
    { k = $1 "\t" $2 "\t" $3
      if (!(k in n)) { o[++m] = k; c[k] = $2 }
      n[k] += $5; d[k] += $6; e[k] += $9; st[k] += $10; mt[k] += $11; lr[k] += $12; lo_[k] += $13
      p50[k] = p50[k] " " $7; p99[k] = p99[k] " " $8; ns[k]++
      r = $5 / ($6 / 1e6); if (!(k in lo) || r < lo[k]) lo[k] = r; if (r > hi[k]) hi[k] = r
      if ($3 ~ /^costgate/) led[k] = 1 }
    END {
      print "mode\tconns\tpath\trequests\tduration_us\trps\trps_min\trps_max\tp50_us\tp99_us\terrors\tserver_cpu_us_per_req\tmock_cpu_us_per_req\tledger_rows\tledger_ok\tledger_check"
      for (i = 1; i <= m; i++) { k = o[i]
        chk = "-"
        if (led[k]) chk = (lo_[k] >= n[k] && lr[k] <= n[k] + c[k] * ns[k]) ? "ok" : "MISMATCH"
        printf "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\n", k, n[k], d[k],
          n[k] / (d[k] / 1e6), lo[k], hi[k], median(p50[k]), median(p99[k]), e[k],
          n[k] ? st[k] * 1e6 / hz / n[k] : 0, n[k] ? mt[k] * 1e6 / hz / n[k] : 0,
          led[k] ? lr[k] : "-", led[k] ? lo_[k] : "-", chk } }' "$TMP/slices.tsv" >"$TSV"
cp "$TMP/slices.tsv" "${TSV%.tsv}.slices.tsv"
if grep -q MISMATCH "$TSV"; then
    log "LEDGER MISMATCH: committed rows do not match completed requests:"
    grep MISMATCH "$TSV" >&2
fi

CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
NGINX_V=$(nginx -v 2>&1 | sed 's/.*: //')
WRK_V=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
BUILD_TYPE=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$(dirname "$BIN")/CMakeCache.txt" 2>/dev/null || echo '?')
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l)

{
    echo "# costgate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`bash bench/run.sh\` (BENCH_DURATION=$DURATION BENCH_SLICES=$SLICES BENCH_WARMUP=$WARMUP BENCH_CONNS=\"$CONNS\"$([ "$MODES" != "json stream" ] && echo " BENCH_MODES=\"$MODES\"")$([ "$WORKERS2" != 1 ] && echo " BENCH_WORKERS2=$WORKERS2")$([ -n "${BENCH_PROMPT_BYTES:-}" ] && echo " BENCH_PROMPT_BYTES=$BENCH_PROMPT_BYTES")$([ "$CELL_SLICES" != 30 ] && echo " BENCH_CELL_SLICES=$CELL_SLICES")$([ "$CELL_SLICE" != 1 ] && echo " BENCH_CELL_SLICE=$CELL_SLICE")$([ "$AA" != 1 ] && echo " BENCH_AA=$AA")$([ -n "${COSTGATE_BIN:-}" ] && echo " COSTGATE_BIN=$BIN"))"
    echo
    echo "- Machine: nproc $NCPU, $CPU_MODEL, kernel $(uname -r)"
    echo "- Versions: $NGINX_V, wrk $WRK_V, costgate $GIT_REV + $GIT_DIRTY uncommitted files under src/ ($BUILD_TYPE build, binary sha256 $BIN_ID)"
    echo "- Pinning: wrk (1 thread) on CPU $CCPU; the server under test and the mock upstream on CPU $SCPU (same for all paths)"
    echo "- Load average (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER"
    echo "- Per path and cell: ${WARMUP}s warm-up, then $SLICES interleaved slices of ${SLICE}s ($CELL_SLICES rounds of ${CELL_SLICE}s slices in the cache and tiering cells; the order of the paths rotates by one each round); req/s over all slices (min..max of the slices), p50/p99 = median of the slices'"
    echo "- Ledger: on (SQLite WAL, synchronous=NORMAL, on $(df --output=source "$TMP" | tail -1)); costgate rows checked: every completed request has its committed ok row"
    echo
    awk -F'\t' -f "$BENCH/table.awk" "$TSV"
    echo
    awk -F'\t' -f "$BENCH/paired.awk" "${TSV%.tsv}.slices.tsv"
} >"$REPORT"

cat "$REPORT"
log "wrote $REPORT"
