#!/usr/bin/env bash
# Native tests: the core crate (unit tests, and integration tests against the
# real Redis and Azurite at REDIS_URL / AZURITE_BLOB_ENDPOINT) and the local
# runtime's own tests; the unit tests of the Spin SDK adapters and the bench.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "core tests (Redis $REDIS_URL, Azurite $AZURITE_BLOB_ENDPOINT)"
cargo test --locked --profile runtime -p platform-core --features native

step "local runtime tests"
cargo test --locked --profile runtime -p spin-local

step "Spin SDK adapters and bench unit tests"
cargo test --locked --profile runtime -p spin-adapters -p bench
