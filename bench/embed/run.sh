#!/usr/bin/env bash
# run.sh: the sentence-embedder benchmark: `costgate embed` against the
# reference JavaScript runtime (npm @energetic-ai/embeddings) on the same
# sentences, in one run. See bench/embed/bench.mjs for what is measured.
#
# Owns: building the binary as `make build` does (RelWithDebInfo; the
# embedder's hot files are -O3 in any build) in its own build dir, making sure the
# converted model exists, and running bench.mjs. Takes about 3-5 minutes.
#
#   bash bench/embed/run.sh [--rounds N] [--append bench/RESULTS.md]
#
# --append replaces the embed-bench section of bench/RESULTS.md. Raw
# results go to bench/out/embed/ (ignored by git). Env: BUILD (build dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench-embed}
[[ -d node_modules/@energetic-ai/embeddings ]] || bash scripts/setup.sh
node scripts/convert_use.mjs --check || node scripts/convert_use.mjs
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target costgate >/dev/null
node bench/embed/bench.mjs --bin "$BUILD/costgate" "$@"
