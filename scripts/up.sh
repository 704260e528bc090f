#!/usr/bin/env bash
# Run the platform locally: Redis and Azurite, the API and the worker.
#
#   scripts/up.sh
#
# Installs what is missing, starts Redis and Azurite (data under .local/),
# builds the components, then runs them with `spin up` when a Spin CLI is found
# (`spin` on PATH, else ../shared/tools/spin-3.6.3/spin) and with the
# project's local runtime (crates/local-runtime) otherwise.
# A background loop calls the sweep endpoint every SWEEP_INTERVAL seconds, as
# the CronJob does on Kubernetes. Ctrl-C stops everything this script started.
#
# Environment: PORT (3000), REDIS_PORT (6379), AZURITE_PORT (10000),
# SPIN_RUNTIME=spin|local to force a runtime, SWEEP_INTERVAL (5).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

PORT="${PORT:-3000}"
SWEEP_INTERVAL="${SWEEP_INTERVAL:-5}"
runtime="${SPIN_RUNTIME:-}"
spin_bin="$(find_spin)"
if [ -z "$runtime" ]; then
    if [ -n "$spin_bin" ]; then runtime=spin; else runtime=local; fi
fi
[ "$runtime" != spin ] || [ -n "$spin_bin" ] || die "SPIN_RUNTIME=spin but no Spin CLI was found"

"$ROOT/scripts/bootstrap.sh" run
already_running="$(ls "$LOCAL_DIR/run"/*.pid 2>/dev/null || true)"
"$ROOT/scripts/services.sh" start

# The runtime runs in a process group of its own (`spin up` starts its
# triggers as child processes): stopping it stops the whole group.
pids=()
cleanup() {
    trap - INT TERM EXIT
    [ "${#pids[@]}" -eq 0 ] || kill -TERM -- "-${pids[0]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$already_running" ] || "$ROOT/scripts/services.sh" stop
}
trap cleanup INT TERM EXIT

api_key="$(local_env_value SPIN_VARIABLE_API_KEYS | cut -d, -f1 | cut -d: -f2)"
admin_token="$(local_env_value SPIN_VARIABLE_ADMIN_TOKEN)"
export_local_service_variables

if [ "$runtime" = spin ]; then
    step "spin build ($spin_bin)"
    "$spin_bin" build
    step "spin up on http://127.0.0.1:$PORT"
    setsid "$spin_bin" up --runtime-config-file runtime-config/local.toml --listen "127.0.0.1:$PORT" &
else
    "$ROOT/scripts/build.sh" --runtime
    step "local runtime on http://127.0.0.1:$PORT (no Spin CLI found)"
    setsid target/runtime/spin-local up --from spin.toml --runtime-config-file runtime-config/local.toml \
        --listen "127.0.0.1:$PORT" &
fi
pids+=($!)

wait_port "$PORT" 120 || die "the platform did not start listening on port $PORT"

# The scheduled sweep: re-publishes jobs whose message was lost or whose retry is due.
(
    while sleep "$SWEEP_INTERVAL"; do
        curl -s -o /dev/null -X POST -H "Authorization: Bearer $admin_token" \
            "http://127.0.0.1:$PORT/api/v1/admin/sweep" || true
    done
) &
pids+=($!)

cat <<MSG

The platform is up ($runtime runtime):
  API        http://127.0.0.1:$PORT/api/v1   (OpenAPI: /api/v1/openapi.json)
  API key    $api_key   (tenant 'demo'; more in runtime-config/local.env)
  Redis      127.0.0.1:$REDIS_PORT    Azurite  http://127.0.0.1:$AZURITE_PORT/devstoreaccount1

Try it:
  curl -s -X POST http://127.0.0.1:$PORT/api/v1/jobs \\
       -H 'Authorization: Bearer $api_key' -H 'Content-Type: application/json' \\
       -d '{"type":"text-stats","input":{"text":"the quick brown fox jumps over the lazy dog"}}'
  curl -s http://127.0.0.1:$PORT/api/v1/jobs/<id> -H 'Authorization: Bearer $api_key'
  curl -s http://127.0.0.1:$PORT/api/v1/jobs/<id>/result -H 'Authorization: Bearer $api_key'

Press Ctrl-C to stop.
MSG

wait "${pids[0]}"
