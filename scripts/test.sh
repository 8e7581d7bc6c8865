#!/usr/bin/env bash
# test.sh: the whole suite. Formatting, then every ctest in the release build,
# then again in the ASan+UBSan build, then a short run of each fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
echo "== clang-format check"
if ! clang-format --dry-run --Werror $(git ls-files '*.c' '*.h' 2>/dev/null || find src tests bench -name '*.[ch]'); then
    echo "clang-format: files above are not formatted (run: make format)"; fail=1
fi
echo "== tests: release build"
(cd build && ctest --output-on-failure -j 2) || fail=1
echo "== tests: ASan+UBSan build"
(cd build-asan && ctest --output-on-failure -j 2) || fail=1
echo "== fuzz: short runs"
(cd build-fuzz && ctest --output-on-failure -R '^fuzz_') || fail=1
if ((fail)); then echo "TESTS FAILED"; exit 1; fi
echo "ALL TESTS PASSED"
