#!/usr/bin/env bash
# Build the Spin components for wasm32-wasip1 (what `spin build` runs for each
# component in spin.toml) and print their sizes. With `--runtime`, also build
# the local runtime (target/runtime/spin-local).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "build components (wasm32-wasip1, release)"
cargo build --locked --release --target wasm32-wasip1 -p api -p worker -p worker-health
for wasm in api worker worker_health; do
    file="target/wasm32-wasip1/release/$wasm.wasm"
    printf '%-16s %8d bytes  (%s KiB)\n' "$wasm.wasm" "$(stat -c %s "$file")" "$(( $(stat -c %s "$file") / 1024 ))"
done

if [ "${1:-}" = --runtime ]; then
    step "build local runtime (profile runtime)"
    cargo build --locked --profile runtime -p spin-local
fi
