#!/usr/bin/env bash
# Formatting and lints for the whole workspace: rustfmt, then clippy with
# warnings as errors, natively (core, local runtime, e2e) and for
# wasm32-wasip1 (the Spin components).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native crates)"
cargo clippy --locked --profile runtime --workspace --exclude api --exclude worker --exclude worker-health \
    --all-targets --all-features -- -D warnings

step "cargo clippy (components, wasm32-wasip1)"
cargo clippy --locked --release --target wasm32-wasip1 -p api -p worker -p worker-health -p spin-adapters -- -D warnings
