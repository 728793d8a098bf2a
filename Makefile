# smtpcert - the README's commands. CMake + CTest do the work underneath.
#   make            build (build/bin/smtpcertd, build/bin/smtpcert)
#   make demo       install missing packages, build, run the demo server (foreground)
#   make test       install missing packages, build with -Werror, run every test
#   make asan       the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer builds of the fuzz targets (clang)
#   make bench      benchmarks (not part of make test)
#   make install PREFIX=/usr/local DESTDIR=...
PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CTEST_ARGS ?=

.PHONY: all build deps demo test asan fuzz bench install clean lint

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
	CC=clang cmake -S . -B build-fuzz -DSC_FUZZ=ON -DSC_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j $(JOBS)

bench: build
	@test -x bench/run || { echo "make bench: no benchmark yet (bench/run comes with the performance issue)" >&2; exit 1; }
	bench/run

lint:
	scripts/lint .

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-fuzz
