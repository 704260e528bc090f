#!/usr/bin/env bash
# Push the app to an OCI registry of its own, check what the registry serves,
# and run the pushed artifact: the artifact that is tested is the one the
# deploy step deploys.
#
#   scripts/check-artifact.sh
#
# 1. Starts a CNCF Distribution registry (Debian's docker-registry) on
#    127.0.0.1, with its config and data under .local/artifact/.
# 2. Pushes with scripts/push-artifact.sh, the script and digest capture the
#    deploy workflow uses for ACR, as <registry>/jobs-platform:<commit> and
#    :v<version>; both tags must name one digest.
# 3. `DEPLOY_DRY_RUN=1 scripts/deploy.sh dev <registry>/jobs-platform@<digest>`:
#    the reference is one the deploy step takes and puts on both SpinApps.
# 4. tests/infra/artifact_checks.py: the manifest, config and layers as the
#    registry serves them (one Wasm component layer per component source), and
#    the total size, written to target/artifact/oci.json (the bench reports it).
# 5. `spin up --from <registry>/jobs-platform@<digest>` with an empty cache,
#    runtime-config/local.toml and the Redis and Azurite of
#    scripts/services.sh, then scripts/smoke.sh against it: /healthz, a
#    text-stats job from submission to result.
# 6. Control: `spin up --from` a digest the registry does not have must fail.
#
# Needs the built components (scripts/build.sh), Redis and Azurite running
# (scripts/services.sh start) and a Spin CLI (find_spin in scripts/lib.sh).
# Without a Spin CLI it prints that it did not run and why, and exits 0.
# Every process it starts (registry, spin and its `spin trigger` children) is
# stopped on exit, also on failure.
#
# Environment: REDIS_PORT, AZURITE_PORT (scripts/services.sh);
# ARTIFACT_REGISTRY_PORT, ARTIFACT_LISTEN_PORT (default: free ports);
# ARTIFACT_TIMEOUT (seconds for the app to start and the smoke test, 90).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "artifact: push to an OCI registry, check it, run what was pushed"
spin="$(find_spin)"
if [ -z "$spin" ]; then
    echo "artifact check: NOT RUN: no Spin CLI (neither spin on PATH nor ../shared/tools/spin-3.6.3/spin)" >&2
    exit 0
fi
command -v docker-registry >/dev/null 2>&1 ||
    die "docker-registry not found: run scripts/bootstrap.sh (it installs it when a Spin CLI is found)"
while IFS= read -r source; do
    [ -f "$source" ] || die "$source not found: build the components first (scripts/build.sh)"
done < <(sed -n 's/^source = "\(.*\)"$/\1/p' spin.toml)

timeout="${ARTIFACT_TIMEOUT:-90}"
work="$LOCAL_DIR/artifact"
rm -rf "$work"
mkdir -p "$work/registry" "$work/logs"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
registry_port="${ARTIFACT_REGISTRY_PORT:-$(free_port)}"
listen_port="${ARTIFACT_LISTEN_PORT:-$(free_port)}"
port_open "$registry_port" && die "port $registry_port is taken; set ARTIFACT_REGISTRY_PORT"
port_open "$listen_port" && die "port $listen_port is taken; set ARTIFACT_LISTEN_PORT"
registry="127.0.0.1:$registry_port"

# Process groups this script started (registry, spin up): each in a session of
# its own, so stopping one stops `spin trigger` too.
# The leader writes its own pid: it is the group's id even where setsid forks
# (when the caller is a group leader itself, e.g. under job control).
groups=()
start_group() {
    local log="$1" pidfile
    shift
    pidfile="$(mktemp "$work/pid.XXXXXX")"
    # shellcheck disable=SC2016 # $$ and "$@" are the inner shell's
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null &
    for _ in $(seq 50); do
        [ -s "$pidfile" ] && break
        sleep 0.1
    done
    started_pid="$(cat "$pidfile")"
    [ -n "$started_pid" ] || die "could not start $1"
    groups+=("$started_pid")
}
stop_group() {
    local pgid="$1"
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        pgrep -g "$pgid" >/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    sleep 0.2
}
cleanup() {
    local status=$? pgid left=""
    for pgid in "${groups[@]}"; do stop_group "$pgid"; done
    for pgid in "${groups[@]}"; do
        if pgrep -g "$pgid" >/dev/null; then left+=" $(pgrep -g "$pgid" | tr '\n' ' ')"; fi
    done
    if [ -n "$left" ]; then
        echo "artifact check: FAIL: processes still running after stop:$left" >&2
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The registry: loopback only, no auth, its storage under $work.
cat >"$work/registry/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: $registry
YAML
start_group "$work/registry/registry.log" docker-registry serve "$work/registry/config.yml"
wait_port "$registry_port" 20 || die "the registry did not start: $(tail -n 5 "$work/registry/registry.log")"
echo "registry: $registry (docker-registry $(docker-registry --version | awk '{print $NF}'))" >&2

# 2. Push, as the deploy workflow does (tags: the commit and the app version).
commit="$(git rev-parse HEAD 2>/dev/null || echo local)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' spin.toml | head -n 1)"
tags=("$commit" "v$version")
image="$(SPIN="$spin" scripts/push-artifact.sh --insecure "$registry/jobs-platform:${tags[0]}" "${tags[1]}")"
[[ "$image" =~ ^$registry/jobs-platform@sha256:[0-9a-f]{64}$ ]] ||
    die "scripts/push-artifact.sh printed '$image', not $registry/jobs-platform@sha256:<digest>"
echo "pushed: $image" >&2
# In GitHub Actions the push job compares ACR's digest with this one.
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf 'digest=%s\n' "${image##*@}" >>"$GITHUB_OUTPUT"
fi

# 3. The deploy step takes this reference and puts it on both SpinApps.
step "deploy dry run with $image"
# (deploy.sh fails unless the SpinApps api and worker carry exactly $image.)
DEPLOY_DRY_RUN=1 scripts/deploy.sh dev "$image" >"$work/deploy-dev.yaml" ||
    die "scripts/deploy.sh dev does not take $image"

# 4. What the registry serves under that digest.
step "OCI manifest, config and layers"
python3 tests/infra/artifact_checks.py --registry "http://$registry" --image "${image#"$registry"/}" \
    --tag "${tags[0]}" --tag "${tags[1]}" --report "$ROOT/target/artifact/oci.json" ||
    die "the pushed artifact $image does not pass the checks above"

# 5. Run exactly that digest, pulled into an empty cache, and smoke-test it.
step "spin up --from $image"
export_local_service_variables
start_group "$work/spin-up.log" "$spin" up --from "$image" --insecure --cache-dir "$work/spin-cache" \
    --runtime-config-file runtime-config/local.toml --listen "127.0.0.1:$listen_port" --log-dir "$work/logs"
spin_pid=$started_pid
deadline=$((SECONDS + timeout))
until port_open "$listen_port"; do
    if ! kill -0 "$spin_pid" 2>/dev/null; then
        cat "$work/spin-up.log" >&2
        die "the pushed reference $image does not run: spin up exited (log above)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { cat "$work/spin-up.log" >&2; die "spin up --from $image did not listen within ${timeout}s"; }
    sleep 0.2
done
# The HTTP port answers before the Redis trigger has subscribed, and a job
# published before then waits for the sweep: wait for the subscription.
subscribers() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PUBSUB NUMSUB jobs 2>/dev/null | sed -n 2p; }
until [ "$(subscribers)" -ge 1 ] 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$work/spin-up.log" >&2; die "spin up --from $image did not subscribe to the jobs channel within ${timeout}s"; }
    sleep 0.2
done
pgrep -g "$spin_pid" -a >&2 || true
if ! SMOKE_API_KEY="$(local_env_value SPIN_VARIABLE_API_KEYS | cut -d, -f1 | cut -d: -f2)" \
    SMOKE_TIMEOUT="$timeout" scripts/smoke.sh "http://127.0.0.1:$listen_port"; then
    tail -n 20 "$work/spin-up.log" "$work"/logs/*_stderr.txt >&2 || true
    die "the pushed reference $image does not pass scripts/smoke.sh"
fi
stop_group "$spin_pid"

# 6. Control: a digest the registry does not have must not start.
step "control: spin up --from a digest that was never pushed"
missing="$registry/jobs-platform@sha256:$(printf '0%.0s' $(seq 64))"
start_group "$work/spin-up-missing.log" "$spin" up --from "$missing" --insecure --cache-dir "$work/spin-cache-missing" \
    --runtime-config-file runtime-config/local.toml --listen "127.0.0.1:$listen_port" --log-dir "$work/logs"
missing_pid=$started_pid
deadline=$((SECONDS + 30))
while kill -0 "$missing_pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "spin up --from $missing did not fail within 30s"
    port_open "$listen_port" && die "spin up --from $missing serves: the check could not tell a missing digest"
    sleep 0.2
done
wait "$missing_pid" && die "spin up --from $missing exited 0"
echo "refused as expected: $(grep -m1 -i error "$work/spin-up-missing.log" || tail -n 1 "$work/spin-up-missing.log")" >&2

step "artifact checked: $image ran and passed the smoke test"
