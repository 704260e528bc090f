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
# E2E_RUNTIME=spin measures `spin up` instead of the local runtime.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/bootstrap.sh" run
command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"
"$ROOT/scripts/build.sh" --runtime

step "bench (${E2E_RUNTIME:-local} runtime, BENCH_RUNS=${BENCH_RUNS:-3})"
cargo run --locked --quiet --profile runtime -p bench -- "$@"
