# smtpcert - the README's commands. CMake + CTest do the work underneath.
#   make            build (build/bin/smtpcertd, build/bin/smtpcert)
#   make demo       install missing packages, build, run the demo server (foreground)
#   make test       install missing packages, build with -Werror, run every test
#   make asan       the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer builds of the fuzz targets (clang): build-fuzz/fuzz/<name>_fuzz
#   make fuzz-smoke every fuzz target for FUZZ_TIME (30) seconds on a copy of its corpus
#   make valgrind   unit tests + the daemon-facing integration tests under valgrind
#   make bench      benchmarks, not part of make test (BENCH_* variables: bench/run)
#   make install PREFIX=/usr/local DESTDIR=...  (any PREFIX, even after a make)
PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CTEST_ARGS ?=
FUZZ_BUILD ?= build-fuzz
VALGRIND_BUILD ?= build-valgrind
# make valgrind VALGRIND_ARGS=--all-integration: every integration file (slow);
# VALGRIND_ARGS="--only test_abuse": one file (scripts/valgrind-suite --help)
VALGRIND_ARGS ?= --unit --integration

.PHONY: all build deps demo test asan fuzz fuzz-smoke valgrind bench install clean lint

all: build

build:
	@test -d $(BUILD) || cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

deps:
	scripts/install-deps

demo: deps
	$(MAKE) build
	scripts/demo

test: deps
	cmake -S . -B $(BUILD) -DSC_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

asan: deps
	cmake -S . -B build-asan -DSC_WERROR=ON -DSC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DSC_FUZZ=ON -DSC_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# FUZZ_TIME, FUZZ_TIMEOUT, FUZZ_JOBS, FUZZ_TARGETS: see scripts/fuzz-smoke
fuzz-smoke: fuzz
	FUZZ_JOBS=$${FUZZ_JOBS:-$(JOBS)} scripts/fuzz-smoke $(FUZZ_BUILD)

# A normal (non-ASan) build: valgrind and the sanitizers exclude each other.
valgrind: deps
	cmake -S . -B $(VALGRIND_BUILD) -DSC_WERROR=ON -DSC_BENCH=OFF
	cmake --build $(VALGRIND_BUILD) -j $(JOBS)
	VALGRIND_JOBS=$(JOBS) scripts/valgrind-suite $(VALGRIND_BUILD) $(VALGRIND_ARGS)

# bench/run builds its own Release tree (build-bench/); see docs/performance.md
bench:
	bench/run

lint:
	scripts/lint .

# PREFIX may differ from the one $(BUILD) was configured with: libsmtpcert.pc and
# smtpcertd.service are written at install time and name the PREFIX installed to
# (packaging/installed-paths.cmake); DESTDIR only stages, it is in no file's text.
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-fuzz build-valgrind build-bench
