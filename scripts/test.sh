#!/usr/bin/env bash
# The whole test run, as CI runs it: installs what is missing, starts Redis and
# Azurite (or reuses running ones), then lints, builds, runs every test suite
# and every offline infrastructure check. Exits non-zero on the first failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

started=$SECONDS
# Keep a copy of the output to count the tests at the end.
mkdir -p "$LOCAL_DIR"
log="$LOCAL_DIR/test.log"
: >"$log"
exec > >(tee -a "$log") 2>&1

"$ROOT/scripts/bootstrap.sh"
# Stop Redis and Azurite at the end only if this run started them.
already_running="$(ls "$LOCAL_DIR/run"/*.pid 2>/dev/null || true)"
"$ROOT/scripts/services.sh" start
[ -n "$already_running" ] || trap '"$ROOT/scripts/services.sh" stop' EXIT

"$ROOT/scripts/lint.sh"
"$ROOT/scripts/check-terraform.sh"
"$ROOT/scripts/check-kubernetes.sh"
"$ROOT/scripts/check-workflows.sh"
"$ROOT/scripts/build.sh" --runtime
"$ROOT/scripts/check-artifact.sh"
"$ROOT/scripts/test-unit.sh"
"$ROOT/scripts/test-e2e.sh"

step "infrastructure check tests (pytest)"
"$VENV_DIR/tools/bin/pytest" -q tests/infra

# One closing line for the whole run: cargo test suites, pytest and schemathesis cases.
totals="$(awk '
    /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^[0-9]+ passed/ { p += $1 }
    /generated, [0-9]+ passed/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) p += $i }
    END { printf "%d passed, %d failed", p, f }' "$log")"
step "all tests passed in $(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s"
echo "tests: $totals"
