#!/usr/bin/env bash
# Benchmarks (docs/BENCHMARKS.md): installs what running needs (redis-server,
# wrk, Azurite), builds the components and the local runtime, then runs the
# bench, which starts its own Redis, Azurite and runtime processes on free
# loopback ports, drives them with wrk and a fixed-rate load generator, and
# prints a table. Results: target/bench/results.json and results.md.
#
#   scripts/bench.sh              BENCH_RUNS runs (default 3): median, min, max
#   scripts/bench.sh --quick      smoke run: one run, short phases (< 2 min)
#   scripts/bench.sh --only api,size     sections: api, pipeline, native, size
#
# Measures real Spin (`spin up`) whenever a Spin CLI is found (`spin` on PATH,
# else ../shared/tools/spin-3.6.3/spin), the local runtime otherwise;
# E2E_RUNTIME=local or E2E_RUNTIME=spin chooses explicitly.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/bootstrap.sh" run
command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"
"$ROOT/scripts/build.sh" --runtime

SPIN_BIN="${SPIN_BIN:-$(find_spin)}"
export SPIN_BIN
if [ -z "${E2E_RUNTIME:-}" ]; then
    if [ -n "$SPIN_BIN" ]; then E2E_RUNTIME=spin; else E2E_RUNTIME=local; fi
fi
[ "$E2E_RUNTIME" != spin ] || [ -n "$SPIN_BIN" ] || die "E2E_RUNTIME=spin but no Spin CLI was found"
export E2E_RUNTIME

step "bench ($E2E_RUNTIME runtime, BENCH_RUNS=${BENCH_RUNS:-3})"
cargo run --locked --quiet --profile runtime -p bench -- "$@"
