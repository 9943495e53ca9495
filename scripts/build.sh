#!/usr/bin/env bash
# Builds the worker (build/index.js + build/index_bg.wasm) with worker-build, and the console
# (build/assets/console/, scripts/console-build.mjs) with esbuild, pointing it at the
# locally installed wasm-bindgen, wasm-opt and esbuild so that it downloads nothing.
#
# TEAMKEYS_BUILD=dev (what `make dev` sets) makes a development build: cargo's dev profile,
# incremental, no LTO and no wasm-opt pass, so a rebuild takes seconds. Anything else (the
# default, `make build`, `make test`, `wrangler deploy`) makes the optimised release build.
# TEAMKEYS_PLANE=data builds the data plane alone (the gateway's routes and the key and budget
# ledgers' classes, no `control-plane` feature) into build/data-plane/; TEAMKEYS_PLANE=gateway the
# gateway alone (no ledger classes either) into build/gateway/; release only: what `make size`
# measures.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need() { [ -x "$2" ] || { echo "build: $1 not found at $2: run 'make setup'" >&2; exit 1; }; }
WASM_BINDGEN_BIN=$(command -v wasm-bindgen || true)
WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
ESBUILD_BIN="$PWD/node_modules/@esbuild/linux-x64/bin/esbuild"
[ -x "$ESBUILD_BIN" ] || ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
need wasm-bindgen "$WASM_BINDGEN_BIN"
need wasm-opt "$WASM_OPT_BIN"
need esbuild "$ESBUILD_BIN"
export WASM_BINDGEN_BIN WASM_OPT_BIN ESBUILD_BIN
case "${TEAMKEYS_PLANE:-all}" in
  data) exec worker-build --release -d build/data-plane . --no-default-features --features ledger-objects ;;
  gateway) exec worker-build --release -d build/gateway . --no-default-features ;;
esac
# The console's assets ([assets] in wrangler.toml) live in build/assets/console/.
mkdir -p build/assets/console
# The console itself (src/console/), bundled by esbuild: a second or so.
node scripts/console-build.mjs
if [ "${TEAMKEYS_BUILD:-release}" = dev ]; then
  exec worker-build --dev --no-opt
fi
exec worker-build --release
