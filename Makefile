# rankd — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what they are made of.

SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT        ?= swift
# openssl: scripts/test-pki.sh makes the TLS tests' certificates with it.
APT_PACKAGES := libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler nghttp2-client pkg-config openssl
EXTRA_APT_PACKAGES ?=
LISTEN       ?= 127.0.0.1:50051
DEMO_DIR     ?= var/demo
VENV         := .venv
SWIFT_CHECKS := --explicit-target-dependency-import-check error
BUILD_FLAGS  := $(SWIFT_CHECKS) -Xswiftc -warnings-as-errors
# Release builds are tuned for this host when its CPU has all that `-target-cpu haswell` assumes
# (AVX2, FMA, BMI1/2, F16C, MOVBE, LZCNT; swiftc does not accept the x86-64-v3 spelling): each
# SIMD8 operation of the distance and re-ranking kernels is then one AVX instruction instead of
# two SSE ones, and the i8 kernels use fused multiply-add (RANKD_FMA). Such a binary does not start on older
# x86-64 CPUs: `make PORTABLE=1 release`
# (or run, loadtest-build) builds for baseline x86-64. Debug and test builds are never tuned.
# See docs/OPERATIONS.md ("CPU tuning").
PORTABLE       ?=
HASWELL_FLAGS  := avx2 fma bmi1 bmi2 f16c movbe abm
HOST_CPU_FLAGS := $(shell flags=$$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null); \
                    for f in $(HASWELL_FLAGS); do [[ " $$flags " == *" $$f "* ]] || exit 0; done; \
                    echo -Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DRANKD_FMA)
RELEASE_CPU    := $(if $(PORTABLE),,$(HOST_CPU_FLAGS))
RELEASE_FLAGS  := $(BUILD_FLAGS) $(RELEASE_CPU)

.PHONY: help deps fleet-deps build release run test unit-test interop-test fleet-test deploy-test protos check-protos lint venv clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## Install missing system packages (apt)
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps ## Debug build
	$(SWIFT) build $(BUILD_FLAGS)

release: deps ## Release build (tuned for this CPU when it has AVX2+FMA; PORTABLE=1 for baseline x86-64)
	$(SWIFT) build -c release $(RELEASE_FLAGS)

run: release ## Build release, create the demo snapshot if absent, start rankd on $(LISTEN)
	@bin=$$($(SWIFT) build -c release $(RELEASE_FLAGS) --show-bin-path); \
	if [ ! -f $(DEMO_DIR)/snapshot/manifest.json ]; then \
	  echo "creating the demo snapshot in $(DEMO_DIR) (seeded synthetic users and items)"; \
	  rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && \
	  $$bin/rankctl synth --out $(DEMO_DIR)/input --snapshot $(DEMO_DIR)/snapshot || exit 1; \
	fi; \
	echo; \
	echo "rankd is starting on $(LISTEN) with the demo snapshot. In another terminal, try:"; \
	echo "  $$bin/rankctl rank --server $(LISTEN) --user u_42 --k 10 --explain"; \
	echo "  $$bin/rankctl rank --server $(LISTEN) --user new-visitor --recent sku-7,sku-19 --method dpp"; \
	echo "  $$bin/rankctl rank --server $(LISTEN) --user u_42 --category category-3 --in-stock --max-per-brand 2"; \
	echo "Stop with Ctrl-C (graceful drain)."; \
	echo; \
	exec $$bin/rankd --listen $(LISTEN) --snapshot $(DEMO_DIR)/snapshot

protos: deps ## Regenerate Sources/RankingProtos from Protos/
	scripts/gen-protos.sh

check-protos: deps ## Fail if the committed protoc-c output is stale
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	scripts/gen-protos.sh $$tmp/out >/dev/null; \
	diff -r $$tmp/out Sources/RankingProtos >/dev/null || { echo "Sources/RankingProtos is stale: run 'make protos' and commit" >&2; exit 1; }; \
	echo "protos: up to date"

lint: ## swift format lint over every Swift file (fails on any finding; `swift format -i FILE` fixes most)
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift LoadTests/Sources LoadTests/Tests LoadTests/Benchmarks LoadTests/Package.swift \
	  Fuzz/Harness Fuzz/Sources Fuzz/Package.swift

venv: $(VENV)/.ok
$(VENV)/.ok: Tests/Interop/requirements.txt Tests/Deploy/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/Interop/requirements.txt -r Tests/Deploy/requirements.txt
	touch $@

unit-test: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(SWIFT) test --skip-build

interop-test: deps venv
	$(SWIFT) build $(BUILD_FLAGS)
	RANKD_BIN=$$($(SWIFT) build --show-bin-path)/rankd $(VENV)/bin/python -m pytest -q Tests/Interop

# The fleet test (issue 20, Tests/Fleet/): nginx running deploy/nginx/rankd.conf (and HAProxy running
# deploy/haproxy/rankd.cfg) in front of three
# rankd replicas on loopback; publish to all, SIGKILL one, restart it. About 15 s, so `make test`
# runs it. nginx and haproxy come from apt (Debian's packages), installed like the other packages.
fleet-deps:
	@$(MAKE) --no-print-directory deps EXTRA_APT_PACKAGES="nginx haproxy"

fleet-test: fleet-deps venv ## nginx + three rankd replicas: publish to all, kill and restart one (~15 s)
	$(SWIFT) build $(BUILD_FLAGS)
	RANKD_BIN=$$($(SWIFT) build --show-bin-path)/rankd $(VENV)/bin/python -m pytest -q -s Tests/Fleet

# deploy/k8s/ offline (issue 20): strict Kubernetes schema check, the manifests' flags against
# rankd --help, and the publisher CronJob's script run against three real replicas. ~2 s.
deploy-test: deps venv ## Check deploy/k8s/: schemas, flags, and the publisher script against real replicas
	$(SWIFT) build $(BUILD_FLAGS)
	RANKD_BIN=$$($(SWIFT) build --show-bin-path)/rankd $(VENV)/bin/python -m pytest -q Tests/Deploy

test: check-protos lint unit-test interop-test attack-quick fuzz-smoke-ci crash-soak-quick fleet-test deploy-test ## Install what is missing, run unit, integration, interop, fleet, deploy, quick protocol-attack, fuzz-smoke and WAL crash tests

clean:
	rm -rf .build $(VENV) var

# ---- loadtest: load harness (issue 8, LoadTests/; see docs/LOADTEST.md) -- begin ----------------
# Builds with their own scratch paths so they never touch .build. `make loadtest` uses a rankd
# already listening on LOADTEST_HOST:LOADTEST_PORT, or starts one on the demo snapshot (creating it
# with rankctl synth if absent, as `make run` does) with test services on, and stops it after.
LOADTEST_HOST         ?= 127.0.0.1
LOADTEST_PORT         ?= 50061
LOADTEST_ROOT_SCRATCH ?= .build-loadtest-root
LOADTEST_ARGS         ?= --rate 1000 --duration 20s --warmup 3s --scenario scenarios/rank-demo.json
COMPARE_ARGS          ?=
# The load generator (only it: never rankd) is built without Swift's run-time exclusivity checks.
# Its CPU per call is on the latency path of every closed-loop call and, on a shared machine, taken
# from the server; the checks were 12–21% of it (docs/BENCHMARKS.md, "Client CPU per call"). They
# only catch overlapping accesses to one variable, a programming error, and stay on in the debug
# builds that `swift test` and `make loadtest-test` run, where such a bug traps.
LOADTEST_SWIFT_FLAGS  := -Xswiftc -enforce-exclusivity=unchecked

.PHONY: loadtest loadtest-build loadtest-test loadtest-compare

loadtest-build: deps
	$(SWIFT) build --scratch-path $(LOADTEST_ROOT_SCRATCH) -c release $(RELEASE_CPU) --product rankd
	$(SWIFT) build --scratch-path $(LOADTEST_ROOT_SCRATCH) -c release $(RELEASE_CPU) --product rankctl
	cd LoadTests && $(SWIFT) build --scratch-path .build-loadtest -c release $(RELEASE_CPU) $(LOADTEST_SWIFT_FLAGS) \
	  --product loadtest

loadtest: loadtest-build ## Run the standard load scenario (Rank on the demo snapshot) and print the table
	@bin=$(LOADTEST_ROOT_SCRATCH)/release; mkdir -p var; \
	if [ ! -f $(DEMO_DIR)/snapshot/manifest.json ]; then \
	  rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && \
	  $$bin/rankctl synth --out $(DEMO_DIR)/input --snapshot $(DEMO_DIR)/snapshot || exit 1; \
	fi; \
	if ! (exec 3<>/dev/tcp/$(LOADTEST_HOST)/$(LOADTEST_PORT)) 2>/dev/null; then \
	  $$bin/rankd --listen $(LOADTEST_HOST):$(LOADTEST_PORT) --snapshot $(DEMO_DIR)/snapshot --enable-test-services \
	    >var/loadtest-rankd.log 2>&1 & server=$$!; \
	  trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null' EXIT; \
	  for i in $$(seq 600); do grep -q 'snapshot active' var/loadtest-rankd.log && break; \
	    kill -0 $$server 2>/dev/null || { cat var/loadtest-rankd.log; exit 1; }; sleep 0.1; done; \
	fi; \
	cd LoadTests && .build-loadtest/release/loadtest --target $(LOADTEST_HOST):$(LOADTEST_PORT) $(LOADTEST_ARGS) \
	  --json ../var/loadtest.json --svg ../var/loadtest.svg && echo "report: var/loadtest.json, chart: var/loadtest.svg"

loadtest-compare: loadtest-build venv ## loadtest vs h2load, closed loop, same server and requests: 10 paired repeats, ~6 min (COMPARE_ARGS=--pin ...)
	@bin=$(LOADTEST_ROOT_SCRATCH)/release; \
	if [ ! -f $(DEMO_DIR)/snapshot/manifest.json ]; then \
	  rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && \
	  $$bin/rankctl synth --out $(DEMO_DIR)/input --snapshot $(DEMO_DIR)/snapshot || exit 1; \
	fi; \
	$(VENV)/bin/python scripts/compare-loadtest-h2load.py --rankd $$bin/rankd \
	  --loadtest LoadTests/.build-loadtest/release/loadtest --snapshot $(DEMO_DIR)/snapshot $(COMPARE_ARGS)

loadtest-test: deps ## LoadTests unit tests and a short end-to-end run against a real rankd
	$(SWIFT) build --scratch-path $(LOADTEST_ROOT_SCRATCH) -c release $(RELEASE_CPU) --product rankd
	cd LoadTests && $(SWIFT) build --scratch-path .build-loadtest --product LoadTestsPackageTests && \
	  RANKD_BIN=$(CURDIR)/$(LOADTEST_ROOT_SCRATCH)/release/rankd $(SWIFT) test --scratch-path .build-loadtest --skip-build

# ---- hardening: fuzzing, protocol attacks, crash soak, sanitizers (issue 21; docs/SECURITY.md) -- begin ----
# Fuzz/ is its own package: rankd-fuzz is libFuzzer's driver around FuzzHarness (Fuzz/Harness), one binary
# for every target (RANKD_FUZZ_TARGET picks one). Committed corpora: Fuzz/Corpus/<target>/ (seed-* from
# `make fuzz-seeds`, regression-* = inputs that once crashed; the test suite replays both). What a run
# discovers goes to var/fuzz/corpus/<target>/, crashes to var/fuzz/artifacts/.
FUZZ_TARGETS   := rank-request admin-request deframer server-connection snapshot ranking-config build-npy build-jsonl
FUZZ_SECONDS   ?= 60
FUZZ_SCRATCH   := Fuzz/.build-fuzz
FUZZ_BIN       := $(FUZZ_SCRATCH)/debug/rankd-fuzz
# Leak checking is off: the targets' shared fixture (a snapshot and an engine) lives for the process. The
# Swift backtracer is off so that libFuzzer's handler reports traps. Scratch files go to tmpfs when there is
# one (the publish and snapshot targets write a directory per input).
FUZZ_ENV       := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
                  TMPDIR=$$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp )
SOAK_KILLS     ?= 200
ATTACK_ARGS    ?=

.PHONY: fuzz-build fuzz fuzz-smoke fuzz-smoke-ci fuzz-seeds attack-test attack-quick crash-soak crash-soak-live \
        crash-soak-quick test-tsan test-asan

# The root package is a path dependency of Fuzz/: SwiftPM keeps its build plan when files are added to
# it ("cannot find type in scope"), so the plan is dropped before each build (compiled objects are kept).
fuzz-build: deps ## Build the libFuzzer binary (Fuzz/, -sanitize=fuzzer,address)
	rm -f Fuzz/.build-fuzz/debug.yaml Fuzz/.build-fuzz/*/debug/description.json
	cd Fuzz && $(SWIFT) build --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
	  -Xswiftc -parse-as-library --product rankd-fuzz

fuzz: fuzz-build ## Fuzz every target for FUZZ_SECONDS each (default 60); fails on any crash
	@mkdir -p var/fuzz/artifacts; : > var/fuzz/summary.txt; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p var/fuzz/corpus/$$t; \
	  $(FUZZ_ENV) RANKD_FUZZ_TARGET=$$t $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=var/fuzz/artifacts/$$t- var/fuzz/corpus/$$t Fuzz/Corpus/$$t \
	    > var/fuzz/$$t.log 2>&1 || failed="$$failed $$t"; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' var/fuzz/$$t.log); \
	  cov=$$(grep -oE 'cov: [0-9]+ ft: [0-9]+' var/fuzz/$$t.log | tail -1); \
	  printf '%-18s %10s execs  %s\n' $$t "$${execs:-?}" "$$cov" | tee -a var/fuzz/summary.txt; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (var/fuzz/<target>.log, var/fuzz/artifacts/)"; exit 1; fi

fuzz-smoke: ## Every fuzz target for 5 s (FUZZ_SECONDS=N to change); `make test` runs the shorter fuzz-smoke-ci
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(if $(filter command line,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),5)

# The CI smoke in `make test`: the one fuzz binary, built incrementally in its own scratch folder (only what
# changed since the last build recompiles; docs/BENCHMARKS.md, "Hardening", has the clean and incremental
# costs), then every target for at most FUZZ_SMOKE_RUNS inputs or FUZZ_SMOKE_SECONDS, from the committed corpus
# only. New inputs go to a scratch folder, never into Fuzz/Corpus. Fails on any crash; prints execs per target.
FUZZ_SMOKE_RUNS    ?= 20000
FUZZ_SMOKE_SECONDS ?= 4
fuzz-smoke-ci: fuzz-build
	@mkdir -p var/fuzz/artifacts; : > var/fuzz/smoke-summary.txt; failed=""; scratch=$$(mktemp -d); \
	trap 'rm -rf $$scratch' EXIT; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $$scratch/$$t; \
	  $(FUZZ_ENV) RANKD_FUZZ_TARGET=$$t $(FUZZ_BIN) -runs=$(FUZZ_SMOKE_RUNS) -max_total_time=$(FUZZ_SMOKE_SECONDS) \
	    -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=var/fuzz/artifacts/$$t- \
	    $$scratch/$$t Fuzz/Corpus/$$t > var/fuzz/smoke-$$t.log 2>&1 || failed="$$failed $$t"; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' var/fuzz/smoke-$$t.log); \
	  cov=$$(grep -oE 'cov: [0-9]+ ft: [0-9]+' var/fuzz/smoke-$$t.log | tail -1); \
	  printf 'fuzz smoke %-18s %7s execs  %s\n' $$t "$${execs:-?}" "$$cov" | tee -a var/fuzz/smoke-summary.txt; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz smoke: crashes in:$$failed (var/fuzz/smoke-<target>.log, var/fuzz/artifacts/)"; exit 1; fi

fuzz-seeds: fuzz-build ## Regenerate the seed corpora Fuzz/Corpus/<target>/seed-* from the harness
	rm -f Fuzz/Corpus/*/seed-*
	$(FUZZ_ENV) RANKD_FUZZ_WRITE_SEEDS=Fuzz/Corpus $(FUZZ_BIN)

# Protocol attacks against a running rankd (LoadTests/Attacks, Python with h2): each attacker is cut off,
# rankd's memory stays bounded and a bystander's Rank p99 stays within 2x of quiet (quiet and attacked runs
# alternate, 3 rounds, medians; ATTACK_ARGS="--rounds 1 --only a,b" for less). The quick subset (short runs,
# 1000 idle connections, no p99 bound, no quiet runs between attacks) is part of `make test`.
attack-test: deps venv ## Protocol attacks, full: 3 rounds of 8 s each, 10k idle connections, bystander p99 <= 2x quiet (~13 min)
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product rankd
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product rankctl
	@bin=$$($(SWIFT) build -c release $(RELEASE_FLAGS) --show-bin-path); mkdir -p var; \
	cd LoadTests/Attacks && ../../$(VENV)/bin/python attacks.py --rankd $$bin/rankd --rankctl $$bin/rankctl \
	  --json ../../var/attacks.json $(ATTACK_ARGS)

attack-quick: deps venv
	$(SWIFT) build $(BUILD_FLAGS)
	@bin=$$($(SWIFT) build --show-bin-path); \
	cd LoadTests/Attacks && ../../$(VENV)/bin/python attacks.py --rankd $$bin/rankd --rankctl $$bin/rankctl --quick

# Crash soak (LoadTests/Attacks/crash_soak.py): SIGKILL rankd at random moments while publishes, activations
# and Rank traffic run, SOAK_KILLS times; after every restart the active snapshot must be a complete, validated
# version and every acknowledged publish must be present.
crash-soak: deps venv ## SIGKILL rankd SOAK_KILLS times (default 200) under publish/activate/Rank traffic
	$(SWIFT) build $(BUILD_FLAGS)
	@bin=$$($(SWIFT) build --show-bin-path); \
	$(VENV)/bin/python LoadTests/Attacks/crash_soak.py --rankd $$bin/rankd --rankctl $$bin/rankctl --kills $(SOAK_KILLS)

# The same under live updates (UpdateItems, DeleteUser: the write-ahead log): after every restart each
# acknowledged batch and deletion is in effect and no batch is half-applied (read back through Rank).
crash-soak-live: deps venv ## SIGKILL rankd SOAK_KILLS times under UpdateItems/DeleteUser traffic (the WAL)
	$(SWIFT) build $(BUILD_FLAGS)
	@bin=$$($(SWIFT) build --show-bin-path); \
	$(VENV)/bin/python LoadTests/Attacks/crash_soak.py --live --rankd $$bin/rankd --rankctl $$bin/rankctl --kills $(SOAK_KILLS)

# Five kills of the live-update soak on a small catalogue, in `make test` (~30 s).
crash-soak-quick: deps venv
	$(SWIFT) build $(BUILD_FLAGS)
	@bin=$$($(SWIFT) build --show-bin-path); \
	$(VENV)/bin/python LoadTests/Attacks/crash_soak.py --live --rankd $$bin/rankd --rankctl $$bin/rankctl --kills 5 \
	  --live-items 3000 --live-users 1000

# The Swift test suite under ThreadSanitizer / AddressSanitizer, each in its own build folder (a first build
# takes 4-12 min on 2 cores). RANKD_TEST_TIMING_SCALE stretches the few wall-clock latency bounds only.
test-tsan: deps ## swift test under ThreadSanitizer
	$(SWIFT) build --scratch-path .build-tsan --build-tests --sanitize=thread $(SWIFT_CHECKS)
	TSAN_OPTIONS=halt_on_error=1 RANKD_TEST_TIMING_SCALE=10 \
	  $(SWIFT) test --scratch-path .build-tsan --skip-build --sanitize=thread

test-asan: deps ## swift test under AddressSanitizer
	$(SWIFT) build --scratch-path .build-asan --build-tests --sanitize=address $(SWIFT_CHECKS)
	ASAN_OPTIONS=detect_leaks=0 RANKD_TEST_TIMING_SCALE=4 \
	  $(SWIFT) test --scratch-path .build-asan --skip-build --sanitize=address
# ---- hardening -- end -------------------------------------------------------------------------------------

# ---- TLS benchmark (issue 19; docs/BENCHMARKS.md "TLS") ----------------------------------------
# The demo snapshot's Rank call over TLS and over cleartext, same run: h2load -c8 -m16 and -c1 -m1,
# the load harness with --tls, and connection set-up (TCP vs TLS vs mutual TLS). About 3 minutes.
.PHONY: bench-tls
bench-tls: loadtest-build venv ## Rank over TLS vs cleartext (throughput, p99, handshake cost), ~3 min
	@bin=$(LOADTEST_ROOT_SCRATCH)/release; \
	if [ ! -f $(DEMO_DIR)/snapshot/manifest.json ]; then \
	  rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && \
	  $$bin/rankctl synth --out $(DEMO_DIR)/input --snapshot $(DEMO_DIR)/snapshot || exit 1; \
	fi; \
	$(VENV)/bin/python scripts/bench-tls.py --rankd $$bin/rankd --snapshot $(DEMO_DIR)/snapshot \
	  --loadtest LoadTests/.build-loadtest/release/loadtest

# ---- Events benchmarks (issue 17; docs/BENCHMARKS.md "Events") ----------------------------------------
# bench-events: one release rankd on the demo snapshot, Rank traffic from loadtest (RATE, default 1000/s),
# runs alternating without and with RecordEvents client streams (event-bench stream) flowing; ingest rate and
# Rank p99 side by side, medians of ROUNDS (3). About 2 minutes. bench-events-memory: the event store in
# process with 10M users' events in a 1 GiB budget (memory per user, eviction, read cost), about 1 minute.
.PHONY: bench-events bench-events-memory event-bench-build
event-bench-build: deps
	cd LoadTests && $(SWIFT) build --scratch-path .build-loadtest -c release $(RELEASE_CPU) $(LOADTEST_SWIFT_FLAGS) \
	  --product event-bench

bench-events: loadtest-build event-bench-build ## RecordEvents ingest over gRPC with Rank traffic: events/s and Rank p99 on/off, ~2 min
	@bin=$(LOADTEST_ROOT_SCRATCH)/release; \
	if [ ! -f $(DEMO_DIR)/snapshot/manifest.json ]; then \
	  rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && \
	  $$bin/rankctl synth --out $(DEMO_DIR)/input --snapshot $(DEMO_DIR)/snapshot || exit 1; \
	fi; \
	RANKD=$$bin/rankd SNAPSHOT=$(DEMO_DIR)/snapshot flock /tmp/rankd-bench.lock scripts/bench-events.sh

bench-events-memory: event-bench-build ## Event store with 10M users' events in 1 GiB: bytes per user, evictions, read cost, ~1 min
	flock /tmp/rankd-bench.lock LoadTests/.build-loadtest/release/event-bench memory --users 10000000 \
	  --events-per-user 4 --budget-mib 1024
