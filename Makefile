# teamkeys: `make dev` runs the gateway locally, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false

.PHONY: help setup build dev test test-unit test-e2e bench clean

help:
	@echo "make dev    run the gateway locally (mock upstream, local KV and Durable Objects, demo key)"
	@echo "make test   run every test (host unit tests, then end-to-end tests in workerd)"
	@echo "make build  build the worker into build/"
	@echo "make bench  run the benchmarks and print the figures (~7 min; BENCH_QUICK=1 for a short run)"

setup:
	@scripts/setup.sh

build: setup
	@scripts/build.sh

dev: setup
	@node scripts/dev.mjs

test: setup
	cargo test --locked
	@scripts/build.sh
	node --test --test-concurrency=1 tests/e2e/

bench: build
	@node bench/run.mjs

clean:
	rm -rf build target .wrangler .dev
