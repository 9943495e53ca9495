# teamkeys: `make dev` runs the gateway locally, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false

.PHONY: help setup build dev test test-unit test-e2e bench size deploy fuzz soak clean

help:
	@echo "make dev    run the gateway locally (mock upstream, local KV and Durable Objects, demo key)"
	@echo "make test   run every test (host unit tests, end-to-end tests in workerd, the console in Chromium)"
	@echo "make build  build the worker and the console into build/"
	@echo "make bench  run the benchmarks and print the figures (~7 min; BENCH_QUICK=1 for a short run)"
	@echo "make deploy deploy both workers: teamkeys and the gateway alone (wrangler.gateway.toml)"
	@echo "make size   the bytes deployed: the whole worker and the data plane alone (raw, gzip)"
	@echo "make fuzz   run every fuzz target (FUZZ_SECONDS each, default 20; or FUZZ_RUNS executions)"
	@echo "make soak   run the chaos soak (SEED=1 STEPS=100000)"

setup:
	@scripts/setup.sh

build: setup
	@scripts/build.sh

dev: setup
	@node scripts/dev.mjs

test: setup
	cargo test --locked
	@scripts/build.sh
	@TEAMKEYS_PLANE=gateway scripts/build.sh
	node --test --test-concurrency=1 tests/e2e/
	node --test --test-concurrency=1 tests/browser/

bench: build
	@node bench/run.mjs

size: setup
	@scripts/size.sh

# Both workers: teamkeys (everything: the control plane, the console, every object and the gateway)
# and teamkeys-gateway (the gateway alone, bound to teamkeys' ledgers: wrangler.gateway.toml).
deploy: setup
	npx wrangler deploy
	npx wrangler deploy -c wrangler.gateway.toml

# Fuzzing: cargo-fuzz on nightly, installed on first use. Each target starts from its committed
# corpus (fuzz/corpus/<target>, read only) and writes what it finds to fuzz/corpus-run/<target>.
FUZZ_SECONDS ?= 20
FUZZ_RUNS ?=
# Release code with debug assertions (arithmetic overflow is a finding) and no sanitizer: the
# crate's core forbids unsafe code (src/lib.rs), so AddressSanitizer could only catch a fault in a
# dependency's unsafe code, at several times the cost per unit.
FUZZ_FLAGS := -O -a -s none
FUZZ_TARGETS := gateway_route admin_route request_body usage_scanner key_record admin_input glob ip_allowlist webhook_url

fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@cd fuzz && cargo +nightly fuzz build $(FUZZ_FLAGS)
	@failed=0; for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus-run/$$target; \
		budget=$$( [ -n "$(FUZZ_RUNS)" ] && echo "-runs=$(FUZZ_RUNS)" || echo "-max_total_time=$(FUZZ_SECONDS)" ); \
		log=fuzz/corpus-run/$$target.log; \
		start=$$(date +%s); \
		(cd fuzz && cargo +nightly fuzz run $(FUZZ_FLAGS) $$target corpus-run/$$target corpus/$$target -- $$budget -timeout=30 -rss_limit_mb=2048 -print_final_stats=1) > $$log 2>&1; \
		status=$$?; end=$$(date +%s); [ $$status -eq 0 ] || failed=1; \
		runs=$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$log | grep -o '[0-9]*$$'); \
		cov=$$(grep -o 'cov: [0-9]*' $$log | tail -1 | grep -o '[0-9]*'); \
		size=$$(ls fuzz/corpus-run/$$target | wc -l); \
		printf '%-14s executions %10s  time %4ss  cov %6s  corpus %5s  %s\n' $$target "$$runs" $$((end - start)) "$$cov" $$size \
			"$$( [ $$status -eq 0 ] && echo ok || echo "FAILED (see $$log and fuzz/artifacts/)" )"; \
	done; exit $$failed

SEED ?= 1
STEPS ?= 100000

soak:
	SOAK_SEED=$(SEED) SOAK_STEPS=$(STEPS) cargo test --release --locked --test soak chaos_soak -- --nocapture

clean:
	rm -rf build target .wrangler .dev
