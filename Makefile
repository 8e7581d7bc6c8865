# costgate: the two commands are `make run` and `make test`.
# Everything else here is a building block of those two.
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CONFIG ?= config/example.yaml

.PHONY: all setup build build-asan build-fuzz run test test-unit clean format format-check

all: build

setup:
	@bash scripts/setup.sh

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCG_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-fuzz:
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCG_SANITIZE=ON \
	  -DCG_FUZZ=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c 2>/dev/null | sed 's/\.c$$//' | tr '\n' ' ') costgate_core

# Set up, build, and start the gateway with the example config (mock upstream
# when no provider key is set).
run: setup build
	@bash scripts/run.sh $(CONFIG)

# Set up, build twice (release and ASan+UBSan), run every test in both, then
# the fuzz targets briefly.
test: setup build build-asan build-fuzz
	@bash scripts/test.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
