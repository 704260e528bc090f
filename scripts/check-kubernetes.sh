#!/usr/bin/env bash
# Offline checks for the Kubernetes side (kubernetes/). Runs every check, then
# exits non-zero if any of them found something. No cluster is needed.
#
#   kustomize    `kubectl kustomize` builds the base and every overlay, and
#                every overlay again with each component it does not include
#                yet (components/redis-in-cluster), as an environment may
#                switch it on
#   schemas      built-in kinds against the Kubernetes JSON schemas
#                (kubernetes-validate, strict); SpinApp and SpinAppExecutor
#                against spin-operator's CRDs (jsonschema, unknown fields
#                rejected); part of tests/infra/kubernetes_checks.py
#   project      tests/infra/kubernetes_checks.py: Spin variables vs spin.toml,
#                secretKeyRefs vs the SecretProviderClasses, pinned images,
#                resources and ServiceAccounts, NetworkPolicy/PDB selectors vs
#                pod labels, the traffic the app needs, probes, body limit,
#                hardening of our own pods, the in-cluster Redis (durable,
#                reachable only from api and worker), and each environment's
#                Terraform redis_mode against its overlay
#   checkov      the built manifests (kubernetes framework, --skip-download)
#   yamllint     kubernetes/
#   ShellCheck   kubernetes/platform/install.sh and this script
#
# Environment: SPINKUBE_CRDS_DIR (spin-operator CRDs; default
# ../shared/schemas/spinkube, downloaded into .tools/ when absent),
# KUBERNETES_VERSION (schema version, default 1.33.0).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

TOOLS="$VENV_DIR/tools/bin"
CHECKOV="$VENV_DIR/checkov/bin/checkov"
[ -x "$TOOLS/kubectl" ] || die "$TOOLS/kubectl not found: run scripts/bootstrap.sh"
[ -x "$CHECKOV" ] || die "$CHECKOV not found: run scripts/bootstrap.sh"
export KUBECTL="$TOOLS/kubectl"

BUILD_DIR="$(mktemp -d)"
trap 'rm -rf "$BUILD_DIR"' EXIT


kustomizations=(kubernetes/base kubernetes/overlays/*/)
components=(kubernetes/components/*/)

build_one() {
    local dir="$1" out="$2" label="$3"
    if "$KUBECTL" kustomize "$dir" >"$out"; then
        printf '  built %s (%s objects)\n' "$label" "$(grep -c '^kind: ' "$out")" >&2
    else
        printf '  %s does not build\n' "$label" >&2
        return 1
    fi
}

# An overlay plus one component, in a scratch kustomization (kustomize only
# takes relative paths).
build_variant() {
    local overlay="$1" component="$2" dir
    dir="$BUILD_DIR/variant-$(basename "$overlay")-$(basename "$component")"
    mkdir -p "$dir"
    printf 'resources:\n  - %s\ncomponents:\n  - %s\n' \
        "$(realpath --relative-to="$dir" "$overlay")" "$(realpath --relative-to="$dir" "$component")" \
        >"$dir/kustomization.yaml"
    build_one "$dir" "$dir.yaml" "$overlay + $component"
}

build_all() {
    local dir component status=0
    for dir in "${kustomizations[@]}"; do
        dir="${dir%/}"
        build_one "$dir" "$BUILD_DIR/$(basename "$dir").yaml" "$dir" || status=1
        [ "$dir" = kubernetes/base ] && continue
        for component in "${components[@]}"; do
            component="${component%/}"
            grep -q "^  - \.\./\.\./components/$(basename "$component")/\?$" "$dir/kustomization.yaml" && continue
            build_variant "$dir" "$component" || status=1
        done
    done
    return "$status"
}

check "kubectl kustomize (${#kustomizations[@]} kustomizations and their optional components, $("$KUBECTL" version --client | sed -n 's/^Kustomize Version: //p'))" \
    build_all

check "schemas and project checks (tests/infra/kubernetes_checks.py)" \
    "$TOOLS/python" tests/infra/kubernetes_checks.py

checkov_built() {
    local files=("$BUILD_DIR"/*.yaml)
    [ -e "${files[0]}" ] || { echo "nothing was built" >&2; return 1; }
    # Skips, if any are ever needed, go in kubernetes/.checkov.yaml with a reason each.
    "$CHECKOV" --skip-download --quiet --compact --framework kubernetes \
        --config-file kubernetes/.checkov.yaml "${files[@]/#/--file=}"
}
check "checkov (built manifests)" checkov_built

check "yamllint (kubernetes/)" "$TOOLS/yamllint" --strict -d "{
    extends: default,
    rules: {
        document-start: disable,
        line-length: {max: 160},
        comments: {min-spaces-from-content: 1},
        indentation: {indent-sequences: consistent}
    }
}" kubernetes

check "shellcheck (platform install, this script)" \
    "$TOOLS/shellcheck" -x kubernetes/platform/install.sh scripts/check-kubernetes.sh

if [ "${#CHECKS_FAILED[@]}" -gt 0 ]; then
    printf '\nkubernetes checks FAILED: %s\n' "${CHECKS_FAILED[*]}" >&2
    exit 1
fi
printf '\nkubernetes checks passed: kustomize build, schemas, project checks, checkov, yamllint, shellcheck\n' >&2
