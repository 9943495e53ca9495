#!/usr/bin/env bash
# `make size`: the bytes of what is deployed, raw and gzip -9, and of the parts a split deployment
# would upload: the whole worker (build/, what `wrangler deploy` uploads), the data plane alone
# (build/data-plane/: the gateway's routes and the key and budget ledgers' classes, without the
# `control-plane` feature) and the gateway alone (build/gateway/: what serves calls, its ledgers'
# classes bound from another worker). Also the wasm's largest parts, by section and by crate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
TEAMKEYS_PLANE=data scripts/build.sh >/dev/null
TEAMKEYS_PLANE=gateway scripts/build.sh >/dev/null
report() {
  local label=$1 dir=$2 raw=0 gz=0
  for file in "$dir/index_bg.wasm" "$dir/index.js"; do
    raw=$((raw + $(stat -c %s "$file")))
    gz=$((gz + $(gzip -9 -c "$file" | wc -c)))
  done
  printf '%-44s %10s B  %9s B gzip -9\n' "$label" "$raw" "$gz"
}
report "whole worker (build/)" build
report "data plane alone (build/data-plane/)" build/data-plane
report "gateway alone (build/gateway/)" build/gateway
python3 scripts/wasm-parts.py build/gateway/index_bg.wasm
