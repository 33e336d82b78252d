# bufpool: every build step goes through here, so that CI, the Dockerfile and people run the same
# commands. `make test` and `make bench` install missing Debian packages first (as root, or with
# sudo), and do nothing more when everything is there.
PRESET ?= release
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# ccache hashes paths relative to the source tree, so that another checkout (CI's clone, the
# container build's /src) hits the same cache.
export CCACHE_BASEDIR ?= $(CURDIR)

# Build and test dependencies (all Debian 12 packages). Allocators are for the benchmarks; curl,
# prometheus (for promtool) and redis-server (bufpool-bench's RESP client) for the server tests;
# clang-16, the second compiler (make clang, and a clang-built consumer of the g++-built package);
# redis-tools (redis-cli, redis-benchmark), python3-redis and nutcracker (twemproxy), the Redis
# clients and the proxy that the RESP tests drive the server with; haproxy, the HTTP proxy of the
# cluster test (deploy/).
# SERVER_DEPS is what bufpool-server alone needs to build (PRESET=server: the container's build).
SERVER_DEPS := cmake ninja-build g++ make ccache pkg-config libboost1.81-dev libfmt-dev \
        libspdlog-dev libtomlplusplus-dev libcli11-dev libssl-dev
DEPS := $(SERVER_DEPS) clang-format libgtest-dev libgmock-dev libbenchmark-dev \
        libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev \
        curl prometheus redis-server clang-16 redis-tools python3-redis nutcracker openssl \
        haproxy

.PHONY: all deps bench-deps clang-deps clang fuzz-deps fuzz bench-tls configure build test bench bench-server compare asan tsan ci format clean help \
        run dist dist-check cluster cluster-test container-check bench-cluster
all: build

help:
	@echo "make run    install missing packages, build, start bufpool-server with configs/bufpool.toml"
	@echo "make test   install missing packages, build ($(PRESET)), run every test with ctest"
	@echo "make bench  build and run the Google Benchmark binaries (release)"
	@echo "make bench-server  bufpool-server's HTTP GET throughput with wrk, against nginx"
	@echo "make compare  bufpool-server against nginx and Redis (wrk, bufpool-bench), pinned; writes perf/RESULTS.md"
	@echo "make asan   build and test with AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make tsan   build and run the concurrency tests with ThreadSanitizer"
	@echo "make clang  build the library, client, unit tests and examples with clang++ 16, and test them"
	@echo "make bench-tls  HTTP and RPC throughput with TLS against without, in one run"
	@echo "make bench-cluster  haproxy and twemproxy against direct; 3 servers against 1"
	@echo "make fuzz   build the libFuzzer harnesses (clang-16) and run each FUZZ_TIME seconds (60)"
	@echo "make ci     what CI runs: test, asan, tsan, clang, fuzz, dist-check, container-check"
	@echo "make dist   stage the server for a container in build/dist (what the Dockerfile copies)"
	@echo "make dist-check  stage it and check it: runs, finds its libraries, config is valid"
	@echo "make cluster  3 servers behind haproxy (HTTP) and twemproxy (RESP) on loopback, until Ctrl-C"
	@echo "make cluster-test  the cluster's checks (spread, round trips, a server stopped and restarted)"
	@echo "make container-check  build the image with podman and run it through its checks (deploy/container)"
	@echo "make format clang-format every source file in place"

# Installs the missing packages of a list, and nothing when all are there.
install_missing = missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps:
	@$(call install_missing,$(if $(filter server,$(PRESET)),$(SERVER_DEPS),$(DEPS)))

# For perf/server_bench.py and perf/compare.py: load generator, the peers, and the chart.
BENCH_DEPS := wrk nginx-light redis-server gnuplot-nox python3 openssl
bench-deps:
	@$(call install_missing,$(BENCH_DEPS))

# clang++ 16 (Debian clang-16) for the second compiler's build.
CLANG_DEPS := clang-16
clang-deps:
	@$(call install_missing,$(CLANG_DEPS))

clang: clang-deps
	$(MAKE) test PRESET=clang

# libFuzzer harnesses (fuzz/): each runs FUZZ_TIME seconds on a scratch copy of its committed
# corpus (fuzz/corpus/NAME), and the run fails on any crash, sanitizer report or leak; the
# executions per second and the coverage are printed at the end of each.
FUZZ_DEPS := clang-16 libclang-rt-16-dev
FUZZ_TIME ?= 60
FUZZERS := http rpc resp config
fuzz-deps:
	@$(call install_missing,$(FUZZ_DEPS))

fuzz: deps fuzz-deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	fuzz/run.sh build/fuzz/fuzz $(FUZZ_TIME) $(FUZZERS)

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

bench-server: bench-deps
	$(MAKE) build PRESET=release
	perf/server_bench.py

# What TLS costs: the same requests with and without it, in one run (perf/tls_bench.py).
bench-tls: bench-deps
	$(MAKE) build PRESET=release
	perf/tls_bench.py

# What haproxy and twemproxy cost against direct, and N servers against one (perf/cluster_bench.py).
bench-cluster: bench-deps
	$(MAKE) build PRESET=release
	/usr/bin/python3 perf/cluster_bench.py

# Issue 5's comparison: bufpool-server vs nginx and Redis; writes perf/RESULTS.md and compare.svg.
compare: bench-deps
	$(MAKE) build PRESET=release
	perf/compare.py

ci: test asan tsan clang fuzz dist-check container-check

run: build
	build/$(PRESET)/server/bufpool-server --config configs/bufpool.toml

# deploy/cluster/cluster.py with the shipped haproxy and twemproxy configs (deploy/haproxy,
# deploy/twemproxy). CLUSTER_ARGS: --servers N, --http-port P, --resp-port P, --stats-port P.
cluster: build
	BUFPOOL_SERVER_BIN=build/$(PRESET)/server/bufpool-server /usr/bin/python3 deploy/cluster/cluster.py run $(CLUSTER_ARGS)

cluster-test: build
	ctest --preset $(PRESET) -R '^cluster_test$$'

# The container's contents: build/dist/root is copied to / in the runtime image, and
# build/dist/runtime-deps lists the Debian packages that hold the server's shared libraries.
DIST := build/dist
dist: build
	rm -rf $(DIST)
	DESTDIR=$(CURDIR)/$(DIST)/root cmake --install build/$(PRESET) --prefix /usr/local --component server
	install -D -m 0644 configs/container.toml $(DIST)/root/etc/bufpool/bufpool.toml
	: > $(DIST)/runtime-deps.all
	for lib in $$(ldd $(DIST)/root/usr/local/bin/bufpool-server | awk '/=>/ {print $$3}'); do \
	  real=$$(readlink -f $$lib); \
	  pkg=$$( (dpkg -S "$$real" || dpkg -S "/usr$$real" || dpkg -S "$${real#/usr}") 2>/dev/null \
	    | head -1 | cut -d: -f1); \
	  [ -n "$$pkg" ] || { echo "dist: no Debian package holds $$real" >&2; exit 1; }; \
	  echo "$$pkg" >> $(DIST)/runtime-deps.all; \
	done
	sort -u $(DIST)/runtime-deps.all > $(DIST)/runtime-deps
	rm $(DIST)/runtime-deps.all
	@echo "staged in $(DIST): runtime packages: $$(tr '\n' ' ' < $(DIST)/runtime-deps)"

dist-check: dist
	test -s $(DIST)/runtime-deps
	$(DIST)/root/usr/local/bin/bufpool-server --version
	! $(DIST)/root/usr/local/bin/bufpool-server --check-config --config $(DIST)/root/etc/bufpool/bufpool.toml >/dev/null 2>&1
	BUFPOOL_TOKENS=admin:dist-check-not-a-secret $(DIST)/root/usr/local/bin/bufpool-server --check-config --config $(DIST)/root/etc/bufpool/bufpool.toml
	! ldd $(DIST)/root/usr/local/bin/bufpool-server | grep -q 'not found'
	grep -q '^HEALTHCHECK' Dockerfile && grep -q '^USER 10001' Dockerfile && grep -q '^STOPSIGNAL SIGTERM' Dockerfile

# The container, really built and run: podman (Debian's, with runc), base images made with
# debootstrap, the image built from the Dockerfile with the host's ccache lent to it, then run
# read-only without capabilities, over every protocol, under a memory and CPU limit, stopped.
CONTAINER_DEPS := podman runc netavark aardvark-dns catatonit iptables debootstrap curl python3-redis \
        python3-yaml
container-check:
	@$(call install_missing,$(CONTAINER_DEPS))
	deploy/container/check.sh

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
