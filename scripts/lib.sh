# shellcheck shell=bash
# Helpers shared by the scripts in this folder. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
TOOLS_DIR="${TOOLS_DIR:-$ROOT/.tools}"
VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
LOCAL_DIR="${LOCAL_DIR:-$ROOT/.local}"
export TOOLS_DIR VENV_DIR LOCAL_DIR
# A real kube-apiserver for scripts/check-kubernetes.sh, where the machine has one.
KUBE_LOCAL="${KUBE_LOCAL:-$ROOT/../shared/tools/kube-apiserver-1.36.2/kube-local}"
export KUBE_LOCAL

REDIS_PORT="${REDIS_PORT:-6379}"
AZURITE_PORT="${AZURITE_PORT:-10000}"
export REDIS_PORT AZURITE_PORT
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
export AZURITE_BLOB_ENDPOINT="${AZURITE_BLOB_ENDPOINT:-http://127.0.0.1:$AZURITE_PORT/devstoreaccount1}"

# Print a step header.
step() { printf '\n==> %s\n' "$*" >&2; }

# Print an error and exit.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        die "need root to run: $* (install it yourself or run as root)"
    fi
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait up to $2 seconds (default 20) for 127.0.0.1:$1 to accept connections.
wait_port() {
    local port="$1" deadline=$((SECONDS + ${2:-20}))
    until port_open "$port"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Run one named check without stopping at its failure; names of failed checks
# collect in CHECKS_FAILED for the caller's verdict.
CHECKS_FAILED=()
check() {
    local name="$1"
    shift
    step "$name"
    if "$@"; then
        printf 'ok: %s\n' "$name" >&2
    else
        printf 'FAILED: %s\n' "$name" >&2
        CHECKS_FAILED+=("$name")
    fi
}

# A development value: the environment's, else runtime-config/local.env's
# (the order Spin's env provider reads them in).
local_env_value() {
    local name="$1"
    if [ -n "${!name:-}" ]; then printf '%s' "${!name}"; else
        sed -n "s/^$name=//p" "$ROOT/runtime-config/local.env" | head -n 1
    fi
}

# Point the components at the Redis and Azurite of scripts/services.sh,
# unless the environment already sets these variables.
export_local_service_variables() {
    export SPIN_VARIABLE_REDIS_ADDRESS="${SPIN_VARIABLE_REDIS_ADDRESS:-redis://127.0.0.1:$REDIS_PORT}"
    export SPIN_VARIABLE_REDIS_HOST="${SPIN_VARIABLE_REDIS_HOST:-127.0.0.1:$REDIS_PORT}"
    export SPIN_VARIABLE_BLOB_ENDPOINT="${SPIN_VARIABLE_BLOB_ENDPOINT:-http://127.0.0.1:$AZURITE_PORT/devstoreaccount1}"
    export SPIN_VARIABLE_BLOB_HOST="${SPIN_VARIABLE_BLOB_HOST:-127.0.0.1:$AZURITE_PORT}"
}

# The Spin CLI the tests and benchmarks use as the reference runtime: `spin`
# on PATH, else the copy in ../shared/tools when the checkout has one beside
# it. Prints its path, or nothing when there is none.
find_spin() {
    local shared="$ROOT/../shared/tools/spin-3.6.3/spin"
    if command -v spin >/dev/null 2>&1; then
        command -v spin
    elif [ -x "$shared" ]; then
        (cd "$(dirname "$shared")" && printf '%s/spin\n' "$(pwd)")
    fi
}
