#!/usr/bin/env bash
# End-to-end tests of the built components:
#  1. the Rust suite in tests/e2e (each test starts its own Redis, Azurite and
#     runtime processes on free ports, including the fault tests);
#  2. property-based API testing with schemathesis against the OpenAPI
#     document the running API serves (Redis and Azurite from services.sh).
#
# E2E_RUNTIME=spin runs both against `spin up` instead of the local runtime.
# Needs: scripts/build.sh --runtime (components and runtime built).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

runtime="${E2E_RUNTIME:-local}"

step "end-to-end suite ($runtime runtime)"
cargo test --locked --profile runtime -p e2e -- --test-threads "${E2E_THREADS:-2}"

step "schemathesis against the served OpenAPI document ($runtime runtime)"
port="${E2E_SCHEMATHESIS_PORT:-3917}"
logs="$(mktemp -d)"
api_key="$(local_env_value SPIN_VARIABLE_API_KEYS | cut -d, -f1 | cut -d: -f2)"
admin_token="$(local_env_value SPIN_VARIABLE_ADMIN_TOKEN)"
export_local_service_variables
if [ "$runtime" = spin ]; then
    spin up --from spin.toml --runtime-config-file runtime-config/local.toml \
        --listen "127.0.0.1:$port" --log-dir "$logs" >"$logs/runtime.log" 2>&1 &
else
    target/runtime/spin-local up --from spin.toml --runtime-config-file runtime-config/local.toml \
        --listen "127.0.0.1:$port" --log-dir "$logs" >"$logs/runtime.log" 2>&1 &
fi
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
wait_port "$port" 120 || { cat "$logs/runtime.log" >&2; die "the runtime did not start"; }

schemathesis() {
    "$VENV_DIR/tools/bin/schemathesis" --config-file tests/e2e/schemathesis.toml --no-color run \
        "http://127.0.0.1:$port/api/v1/openapi.json" \
        --checks all \
        --max-examples "${SCHEMATHESIS_EXAMPLES:-60}" \
        --workers 1 \
        --request-timeout 10 \
        --suppress-health-check too_slow \
        --seed "${SCHEMATHESIS_SEED:-20261125}" \
        "$@"
}
# Tenant routes with a tenant key, admin routes with the operator token.
schemathesis --header "Authorization: Bearer $api_key" --exclude-path-regex '/admin/'
schemathesis --header "Authorization: Bearer $admin_token" --include-path-regex '/admin/'
