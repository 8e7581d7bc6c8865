#!/usr/bin/env bash
# run.sh: the tiering benchmark and evaluation (docs/tiering.md).
#
# Owns: a Release build in its own directory (build-bench-route), then
#   1. `costgate tier-train` on ../shared/data (models in bench/out/route/models),
#   2. `costgate tier-eval --model-dir` on the held-out splits (report, CSV of
#      every curve point and JSON metrics in bench/out/route/),
#   3. `costgate tier-eval --bench`: nanoseconds per classify (and per learned
#      prediction) on the Arena-Hard prompts, as is and cut/repeated to 2 KiB.
# The numbers in bench/RESULTS.md (section "tier-eval") come from this script.
# Env: ROUNDS (--bench repetitions, 25), DATA (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${ROUNDS:-25}
DATA=${DATA:-$ROOT/../shared/data}
BUILD=$ROOT/build-bench-route
OUT=$ROOT/bench/out/route
mkdir -p "$OUT"

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target costgate >/dev/null
BIN=$BUILD/costgate

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), nproc $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "binary: $(sha256sum "$BIN" | cut -c1-12)"
} > "$OUT/meta.txt"

"$BIN" tier-train --data "$DATA" --out-dir "$OUT/models" 2>/dev/null | tee "$OUT/train.txt"
"$BIN" tier-eval --data "$DATA" --model-dir "$OUT/models" \
  --csv "$OUT/curves.csv" --json "$OUT/metrics.json" 2>/dev/null | tee "$OUT/eval.txt"
"$BIN" tier-eval --bench --data "$DATA" --model-dir "$OUT/models" --rounds "$ROUNDS" 2>/dev/null |
  tee "$OUT/bench.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.txt"
cat "$OUT/meta.txt"
