#!/usr/bin/env bash
# Installs everything `make build`, `make dev` and `make test` need, skipping what is already
# present at the right version. Downloads only from the package registries (crates.io, npm,
# Debian's packages for Chromium) and, for the wasm32 standard library, rustup (or Debian's
# packages when rustup cannot).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nsetup: %s\n' "$*" >&2; exit 1; }
# The first x.y.z a tool prints for --version (formats differ: "wasm-bindgen 0.2.130", "0.8.7").
version_of() { "$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1; }

WORKER_BUILD_VERSION=0.8.7
export PATH="$HOME/.cargo/bin:$PATH"

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) and run again."
command -v node >/dev/null || die "node is missing: install Node.js 20 or newer and run again."
command -v npm >/dev/null || die "npm is missing: install Node.js 20 or newer and run again."

# --- the wasm32 standard library -----------------------------------------------------------
has_wasm_std() {
  local dir
  dir=$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null
}
if has_wasm_std; then
  echo "wasm32-unknown-unknown target: present"
else
  step "Installing the wasm32-unknown-unknown target (rustup, ~1 min)"
  if ! { command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown; }; then
    step "rustup could not install it: building the wasm32 std from Debian's rust-web-src (~5 min)"
    scripts/wasm-std-from-debian.sh
  fi
  has_wasm_std || die "the wasm32-unknown-unknown standard library is still missing"
fi

# --- wasm-bindgen CLI at exactly the Cargo.lock version ---------------------------------------
[ -f Cargo.lock ] || cargo generate-lockfile
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
[ -n "$WB_VERSION" ] || die "no wasm-bindgen version found in Cargo.lock"
if [ "$(version_of wasm-bindgen)" = "$WB_VERSION" ]; then
  echo "wasm-bindgen-cli $WB_VERSION: present"
else
  step "Installing wasm-bindgen-cli $WB_VERSION from crates.io (compiles, ~10 min on 2 cores)"
  # Not --locked: its own lock file names a crate version crates.io no longer serves.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# --- worker-build ---------------------------------------------------------------------------
if [ "$(version_of worker-build)" = "$WORKER_BUILD_VERSION" ]; then
  echo "worker-build $WORKER_BUILD_VERSION: present"
else
  step "Installing worker-build $WORKER_BUILD_VERSION from crates.io (compiles, ~10 min on 2 cores)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi

# --- npm packages: wrangler, workerd, miniflare, binaryen (wasm-opt), esbuild -----------------
if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "npm packages: present"
else
  step "Installing npm packages (wrangler, miniflare, workerd, binaryen, esbuild; ~1 min)"
  npm ci --no-audit --no-fund
fi
# --- Chromium for the console's browser tests (Debian's package; nothing downloads a browser) --
if [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "chromium: present (${CHROMIUM_PATH:-/usr/bin/chromium})"
else
  step "Installing Debian's chromium for the browser tests (apt-get, ~2 min)"
  command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and there is no apt-get: install Chromium at /usr/bin/chromium (or set CHROMIUM_PATH) and run again."
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq || die "apt-get update failed: cannot install chromium"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
    || die "apt-get could not install chromium: the browser tests need /usr/bin/chromium"
  [ -x /usr/bin/chromium ] || die "chromium was installed but /usr/bin/chromium is missing"
fi
echo
echo "setup: done"
