#!/usr/bin/env bash
# Install everything the project needs to build, run and test on a Debian
# machine with only the package registries reachable. Idempotent: a second run
# only checks. Installs: redis-server and wrk (apt; docker-registry too when
# a Spin CLI is found, and etcd-server where ../shared/tools has the
# kube-apiserver that scripts/check-kubernetes.sh uses), Azurite (npm, under
# .tools/), the Python tools (.venv/tools, .venv/checkov) and the
# wasm32-wasip1 Rust target.
#
#   scripts/bootstrap.sh        everything (tests and checks)
#   scripts/bootstrap.sh run    only what running the platform locally needs
#   scripts/bootstrap.sh deploy only what scripts/deploy.sh needs: .venv/deploy
#                               from scripts/requirements-deploy.txt, by hash
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${1:-all}" = deploy ]; then
    stamp="$VENV_DIR/deploy/.requirements.sha256"
    if ! { [ -f "$stamp" ] && sha256sum --status -c "$stamp" 2>/dev/null; }; then
        step "python: deploy virtualenv from scripts/requirements-deploy.txt (hashes required)"
        python3 -m venv "$VENV_DIR/deploy"
        "$VENV_DIR/deploy/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
            --only-binary :all: -r "$ROOT/scripts/requirements-deploy.txt"
        sha256sum "$ROOT/scripts/requirements-deploy.txt" >"$stamp"
    fi
    step "bootstrap (deploy) complete"
    exit 0
fi

AZURITE_VERSION=3.35.0

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v wrk >/dev/null 2>&1 || apt_packages+=(wrk)
# The OCI registry scripts/check-artifact.sh pushes to; that check needs a Spin CLI.
if [ -n "$(find_spin)" ] && ! command -v docker-registry >/dev/null 2>&1; then apt_packages+=(docker-registry); fi
# etcd for the local API server of scripts/check-kubernetes.sh, only where that tool is.
if [ -x "$KUBE_LOCAL" ] && ! command -v etcd >/dev/null 2>&1; then apt_packages+=(etcd-server); fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    step "apt: ${apt_packages[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    step "rustup: wasm32-wasip1 target"
    rustup target add wasm32-wasip1
fi

if [ ! -x "$TOOLS_DIR/azurite/node_modules/.bin/azurite-blob" ]; then
    step "npm: azurite@$AZURITE_VERSION"
    command -v npm >/dev/null 2>&1 || die "npm is required for Azurite (apt-get install nodejs npm)"
    mkdir -p "$TOOLS_DIR/azurite"
    npm install --prefix "$TOOLS_DIR/azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
fi

# A virtualenv per requirements file, rebuilt when the file changes.
venv() {
    local name="$1" requirements="$2" stamp
    stamp="$VENV_DIR/$name/.requirements.sha256"
    if [ -f "$stamp" ] && sha256sum --status -c "$stamp" 2>/dev/null; then
        return
    fi
    step "python: $name virtualenv from ${requirements#"$ROOT"/}"
    python3 -m venv "$VENV_DIR/$name"
    "$VENV_DIR/$name/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    sha256sum "$requirements" >"$stamp"
}
if [ "${1:-all}" != run ]; then
    venv tools "$ROOT/tests/requirements.txt"
    venv checkov "$ROOT/tests/requirements-checkov.txt"
fi

step "bootstrap complete"
