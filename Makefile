# bufpool: every build step goes through here, so that CI, the Dockerfile and people run the same
# commands. `make test` and `make bench` install missing Debian packages first (as root, or with
# sudo), and do nothing more when everything is there.
PRESET ?= release
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Build and test dependencies (all Debian 12 packages). Allocators are for the benchmarks; curl
# and prometheus (for promtool) for the server tests.
DEPS := cmake ninja-build g++ make ccache pkg-config clang-format \
        libboost1.81-dev libfmt-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev \
        libtomlplusplus-dev libcli11-dev libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev \
        curl prometheus

.PHONY: all deps configure build test bench asan tsan ci format clean help
all: build

help:
	@echo "make test   install missing packages, build ($(PRESET)), run every test with ctest"
	@echo "make bench  build and run the Google Benchmark binaries (release)"
	@echo "make asan   build and test with AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make tsan   build and run the concurrency tests with ThreadSanitizer"
	@echo "make ci     what CI runs: test, asan, tsan"
	@echo "make format clang-format every source file in place"

deps:
	@missing=$$(for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

asan:
	$(MAKE) test PRESET=asan

tsan:
	$(MAKE) test PRESET=tsan

bench:
	$(MAKE) build PRESET=release
	perf/run_benchmarks.sh build/release/perf

ci: test asan tsan

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
