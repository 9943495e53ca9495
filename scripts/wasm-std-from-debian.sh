#!/usr/bin/env bash
# Fallback for machines where `rustup target add wasm32-unknown-unknown` cannot download:
# builds the wasm32 standard library from Debian's rust-web-src with Debian's rustc-web, and
# copies the rlibs into the active toolchain's sysroot so cargo and worker-build find them.
# Only valid when Debian's rustc-web is the same Rust release as the active toolchain or newer
# than it is compatible with; the script checks the versions match and stops otherwise.
set -euo pipefail
command -v apt-get >/dev/null || { echo "no apt-get: install the wasm32 target with rustup" >&2; exit 1; }
apt-get update -qq
apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >/dev/null

active=$(rustc --version | awk '{print $2}')
debian=$(/usr/bin/rustc --version | awk '{print $2}')
if [ "$active" != "$debian" ]; then
  echo "active rustc is $active but Debian's is $debian: use Debian's toolchain (PATH=/usr/bin:\$PATH) or rustup" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo_toml="$work/Cargo.toml"
mkdir -p "$work/src"
printf '[package]\nname = "stdbuild"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n' >"$cargo_toml"
echo '#![no_std]' >"$work/src/lib.rs"
RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes CARGO_TARGET_DIR="$work/target" \
  /usr/bin/cargo build --manifest-path "$cargo_toml" --release --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort

dest="$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib"
mkdir -p "$dest"
cp "$work"/target/wasm32-unknown-unknown/release/deps/*.rlib "$dest/"
echo "wasm32 std installed into $dest"
