#!/usr/bin/env bash
# run.sh: the vector index benchmark (src/vector) at 100k and 1M vectors.
#
# Owns: building bench/vector (its own build dir, build-bench-vec), making
# the synthetic data sets (vbench gen; documented in vbench.c and
# docs/vector.md), running `vbench run` on each (build time, memory,
# single-thread k=1 lookup p50/p99 and recall@1 on held-out queries against
# exact search, at several ef_search), the same on Debian's hnswlib when
# libhnswlib-dev is installed (HNSWLIB=1), and the brute-force crossover.
# Output: bench/out/vector/<UTC date>.log and .tsv (git-ignored); the
# published numbers are copied into bench/RESULTS.md (vector-bench section).
#
#   bash bench/vector/run.sh                      # 100k, the Gaussian mixture
#   SIZES="100000 1000000" bash bench/vector/run.sh
#   FILE=emb.f32 DIM=512 bash bench/vector/run.sh # your own vectors (raw f32)
#
# Env: SIZES ("100000"), SETS ("iso"; also "lowrank", "uniform": harder
# sets, see docs/vector.md), QUERIES (1000), EF
# ("16,32,64,128"), M (16), EFC (200), HNSWLIB (1 when the header exists),
# CROSSOVER (1), DATA (/tmp/costgate-vbench: generated files, ~2 GB per 1M),
# FILE/DIM (a vectors file instead of the generator: the last QUERIES rows
# are the held-out queries). Long runs: everything runs under nice.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SIZES=${SIZES:-100000}
SETS=${SETS:-iso}
QUERIES=${QUERIES:-1000}
EF=${EF:-16,32,64,128}
M=${M:-16}
EFC=${EFC:-200}
CROSSOVER=${CROSSOVER:-1}
DATA=${DATA:-/tmp/costgate-vbench}
BUILD=$ROOT/build-bench-vec
OUT=$ROOT/bench/out/vector
STAMP=$(date -u +%Y%m%d-%H%M%S)
LOG=$OUT/$STAMP.log
TSV=$OUT/$STAMP.tsv
mkdir -p "$OUT" "$DATA"

# the project default (RelWithDebInfo, -O2): what bench/RESULTS.md was measured with
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$BUILD" -j2 --target vector_bench >/dev/null
HNSWLIB=${HNSWLIB:-$([[ -f /usr/include/hnswlib/hnswlib.h ]] && echo 1 || echo 0)}
if [[ $HNSWLIB == 1 ]]; then
    nice cmake --build "$BUILD" --target vector_bench_hnswlib >/dev/null
fi
VB=$BUILD/bench/vector/vector_bench
VH=$BUILD/bench/vector/vector_bench_hnswlib

log() { echo "$@" | tee -a "$LOG"; }
log "# vector bench $STAMP: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), nproc $(nproc)"
log "# load before: $(cut -d' ' -f1-3 /proc/loadavg); M $M, ef_construction $EFC, ef_search $EF, $QUERIES held-out queries"

run_one() { # file label dim
    local f=$1 label=$2 dim=$3 gt=$1.gt
    log "## $label ($f)"
    nice "$VB" run "$f" --dim "$dim" --queries "$QUERIES" --M "$M" --efc "$EFC" --ef "$EF" \
        --gt "$gt" --label "$label" --tsv "$TSV" --save "$DATA/index.cgv" 2>&1 | tee -a "$LOG"
    if [[ $HNSWLIB == 1 ]]; then
        nice "$VH" "$f" "$dim" "$QUERIES" "$gt" "$M" "$EFC" "$EF" "$DATA/index.hnsw" 2>&1 |
            tee -a "$LOG"
    fi
}

if [[ -n ${FILE:-} ]]; then
    run_one "$FILE" "$(basename "$FILE")" "${DIM:?DIM is needed with FILE}"
else
    for n in $SIZES; do
        rows=$((n + QUERIES))
        for set in $SETS; do
            f=$DATA/$set-$rows.f32
            case $set in
                # 4096 centres, spread 0.75; noise in one fixed 32-d subspace
                # shared by all clusters (adversarial for any HNSW, see docs)
                lowrank) args=(--centres 4096 --spread 0.75 --intrinsic 32) ;;
                # 4096 centres, spread 0.75; isotropic noise in all 512 dims
                iso) args=(--centres 4096 --spread 0.75 --intrinsic 0) ;;
                # one centre swamped by noise: uniform on the sphere (hardest)
                uniform) args=(--centres 1 --spread 1000 --intrinsic 0) ;;
                *) echo "unknown set $set" >&2; exit 2 ;;
            esac
            [[ -f $f ]] || nice "$VB" gen "$f" --n "$rows" --dim 512 --seed 1 "${args[@]}"
            run_one "$f" "$set-$n" 512
        done
    done
fi
if [[ $CROSSOVER == 1 ]]; then
    log "## brute-force crossover (clustered, dim 512, ef 64)"
    nice "$VB" crossover --dim 512 2>&1 | tee -a "$LOG"
fi
log "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "log: $LOG  tsv: $TSV"
