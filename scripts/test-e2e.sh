#!/usr/bin/env bash
# End-to-end tests of the built components, on every runtime found:
#  1. the Rust suite in tests/e2e (each test starts its own Redis, Azurite and
#     runtime processes on free ports, including the fault tests);
#  2. property-based API testing with schemathesis against the OpenAPI
#     document the running API serves (Redis and Azurite from services.sh);
#  3. with real Spin: the parity test, the same scripted requests against
#     `spin up` and the local runtime, compared.
#
# Runtimes: the local runtime always; real Spin (`spin up`) whenever a Spin
# CLI is found (`spin` on PATH, else ../shared/tools/spin-3.6.3/spin).
# E2E_RUNTIMES="local spin" (or E2E_RUNTIME=spin for one) chooses explicitly.
# Every runtime process must be gone after its test: the suite fails if one
# is left over.
# Needs: scripts/build.sh --runtime (components and runtime built).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

SPIN_BIN="${SPIN_BIN:-$(find_spin)}"
export SPIN_BIN
if [ -n "${E2E_RUNTIMES:-}" ]; then
    read -r -a runtimes <<<"$E2E_RUNTIMES"
elif [ -n "${E2E_RUNTIME:-}" ]; then
    runtimes=("$E2E_RUNTIME")
else
    runtimes=(local)
    [ -z "$SPIN_BIN" ] || runtimes+=(spin)
fi
for runtime in "${runtimes[@]}"; do
    case "$runtime" in
    local) ;;
    spin) [ -n "$SPIN_BIN" ] || die "E2E runtime spin: no Spin CLI found (spin on PATH or ../shared/tools/spin-3.6.3/spin)" ;;
    *) die "unknown E2E runtime '$runtime' (local or spin)" ;;
    esac
done
if [ -n "$SPIN_BIN" ]; then
    step "end-to-end runtimes: ${runtimes[*]} (Spin CLI: $SPIN_BIN, $("$SPIN_BIN" --version))"
else
    step "end-to-end runtimes: ${runtimes[*]} (no Spin CLI found: real Spin not tested)"
fi

# Process groups of every runtime the harness starts, checked after each run.
groups_file="$(mktemp)"
trap 'rm -f "$groups_file"' EXIT
export E2E_PROCESS_GROUPS="$groups_file"

# Fail (after killing them) if any recorded runtime process group still has a
# live process.
check_no_runtime_left() {
    local what="$1" left
    left="$(ps -eo pgid=,stat=,pid=,args= | awk 'NR == FNR { g[$1] = 1; next } ($1 in g) && $2 !~ /^Z/' "$groups_file" -)"
    : >"$groups_file"
    if [ -n "$left" ]; then
        printf '%s\n' "$left" >&2
        awk '{ print $3 }' <<<"$left" | xargs -r kill -KILL 2>/dev/null || true
        die "$what left runtime processes running (listed above)"
    fi
    printf 'ok: no runtime process outlived %s\n' "$what" >&2
}

run_suite() {
    local runtime="$1"
    step "end-to-end suite ($runtime runtime)"
    E2E_RUNTIME="$runtime" cargo test --locked --profile runtime -p e2e -- --test-threads "${E2E_THREADS:-2}"
    check_no_runtime_left "the end-to-end suite on $runtime"
}

# Start the whole app on $1 in a process group of its own on port $2, logs in $3.
start_runtime() {
    local runtime="$1" port="$2" logs="$3" cmd
    if [ "$runtime" = spin ]; then cmd=("$SPIN_BIN" up); else cmd=(target/runtime/spin-local up); fi
    setsid "${cmd[@]}" --from spin.toml --runtime-config-file runtime-config/local.toml \
        --listen "127.0.0.1:$port" --log-dir "$logs" >"$logs/runtime.log" 2>&1 &
    echo "$!" >>"$groups_file"
    runtime_pgid=$!
    wait_port "$port" 120 || { cat "$logs/runtime.log" >&2; die "the $runtime runtime did not start"; }
}

stop_runtime() {
    [ -n "${runtime_pgid:-}" ] || return 0
    kill -KILL -- "-$runtime_pgid" 2>/dev/null || true
    wait "$runtime_pgid" 2>/dev/null || true
    runtime_pgid=
}

run_schemathesis() {
    local runtime="$1" port="${E2E_SCHEMATHESIS_PORT:-3917}" logs api_key admin_token
    step "schemathesis against the served OpenAPI document ($runtime runtime)"
    logs="$(mktemp -d)"
    api_key="$(local_env_value SPIN_VARIABLE_API_KEYS | cut -d, -f1 | cut -d: -f2)"
    admin_token="$(local_env_value SPIN_VARIABLE_ADMIN_TOKEN)"
    export_local_service_variables
    trap 'stop_runtime; rm -f "$groups_file"' EXIT
    start_runtime "$runtime" "$port" "$logs"

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
    stop_runtime
    check_no_runtime_left "schemathesis on $runtime"
    rm -rf "$logs"
}

for runtime in "${runtimes[@]}"; do
    run_suite "$runtime"
    run_schemathesis "$runtime"
done

if [ -n "$SPIN_BIN" ] && [ "${#runtimes[@]}" -gt 1 ]; then
    step "parity: the same requests against spin up and the local runtime"
    # --nocapture: the log keeps the parity table the test prints.
    cargo test --locked --profile runtime -p e2e --test parity -- --test-threads 1 --nocapture
    check_no_runtime_left "the parity test"
fi
step "end-to-end: passed on ${runtimes[*]}"
