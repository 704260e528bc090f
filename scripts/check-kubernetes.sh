#!/usr/bin/env bash
# Checks of the Kubernetes side (kubernetes/). Runs every check, then exits
# non-zero if any of them found something. No cluster is needed.
#
#   kustomize    `kubectl kustomize` builds the base and every overlay, and
#                every overlay again with each component it does not include
#                yet (components/redis-in-cluster), as an environment may
#                switch it on
#   API server   where a local kube-apiserver is available ($KUBE_LOCAL,
#                default ../shared/tools/kube-apiserver-1.36.2/kube-local,
#                with etcd from apt): starts it on free ports, installs every
#                CRD the manifests use (SpinKube, Gateway API, NGINX Gateway
#                Fabric, cert-manager, KEDA, Secrets Store CSI), dry-runs the
#                platform's ClusterIssuers, then applies every overlay and
#                component combination in the phases and order
#                scripts/deploy.sh applies them (each phase `--dry-run=server`
#                first, warnings as errors, then applied so the next phase
#                finds its namespaces and executors, which are checked before
#                the SpinApps go in): CRD schemas and CEL rules, defaulting,
#                unknown fields, Pod Security of each namespace; then the
#                server-* fixtures of tests/infra, each broken one rejected
#                with its expected message. The server and etcd are stopped
#                at the end, also on failure. Without the tool, this step says
#                so and the offline checks below are the validation.
#   schemas      built-in kinds against the Kubernetes JSON schemas
#                (kubernetes-validate, strict); custom resources against their
#                CRDs (jsonschema, unknown fields rejected); part of
#                tests/infra/kubernetes_checks.py
#   project      tests/infra/kubernetes_checks.py: Spin variables vs spin.toml,
#                secretKeyRefs vs the SecretProviderClasses, pinned images,
#                resources and ServiceAccounts, NetworkPolicy/PDB selectors vs
#                pod labels, the traffic the app needs (edge, KEDA, ACME
#                solver), the Gateways and routes (admin only on the internal
#                Gateway, TLS issuer and solver), autoscaling, the Shim, the
#                apply order, hardening of our own pods, the in-cluster Redis,
#                and each environment's Terraform (redis_mode, the edge's
#                public IP and NSG) against its overlay
#   checkov      the built manifests (kubernetes framework, --skip-download)
#   yamllint     kubernetes/
#   ShellCheck   kubernetes/platform/*.sh and this script
#
# Environment: SHARED_SCHEMAS_DIR (CRDs, default ../shared/schemas; files
# downloaded into .tools/ when absent), SPINKUBE_CRDS_DIR, KUBERNETES_VERSION
# (schema version, default 1.33.0), KUBE_LOCAL (the local API server),
# KUBE_LOCAL_API_PORT / KUBE_LOCAL_ETCD_PORT (default: free ports).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

TOOLS="$VENV_DIR/tools/bin"
CHECKOV="$VENV_DIR/checkov/bin/checkov"
[ -x "$TOOLS/kubectl" ] || die "$TOOLS/kubectl not found: run scripts/bootstrap.sh"
[ -x "$CHECKOV" ] || die "$CHECKOV not found: run scripts/bootstrap.sh"
export KUBECTL="$TOOLS/kubectl"
FIXTURES=tests/infra/fixtures/kubernetes
started=$SECONDS

BUILD_DIR="$(mktemp -d)"
SERVER_DIR=""
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_DIR" ]; then
        "$KUBE_LOCAL" stop "$SERVER_DIR" || true
    fi
    rm -rf "$BUILD_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# Components an overlay lists, by name.
included_components() {
    sed -n 's|^  - \.\./\.\./components/\([^/]*\)/\{0,1\}$|\1|p' "$1/kustomization.yaml"
}

build_all() {
    local dir component status=0
    for dir in "${kustomizations[@]}"; do
        dir="${dir%/}"
        build_one "$dir" "$BUILD_DIR/$(basename "$dir").yaml" "$dir" || status=1
        [ "$dir" = kubernetes/base ] && continue
        for component in "${components[@]}"; do
            component="${component%/}"
            included_components "$dir" | grep -qx "$(basename "$component")" && continue
            build_variant "$dir" "$component" || status=1
        done
    done
    return "$status"
}

check "kubectl kustomize (${#kustomizations[@]} kustomizations and their optional components, $("$KUBECTL" version --client | sed -n 's/^Kustomize Version: //p'))" \
    build_all

# --- a real API server -------------------------------------------------------

SCHEMAS="${SHARED_SCHEMAS_DIR:-$ROOT/../shared/schemas}"
# The CRDs the manifests use, at the versions the platform installs.
CRD_DIRS=(spinkube gateway-api/v1.5.1 nginx-gateway-fabric/v2.6.7 cert-manager/v1.21.1 keda/v2.20.2
    secrets-store-csi-driver/v1.6.0)

server_available() {
    [ -x "$KUBE_LOCAL" ] && command -v etcd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 &&
        [ -d "$SCHEMAS/spinkube" ]
}

# A free TCP port on 127.0.0.1 (and the next one, for etcd's peer port).
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 30000))
        port_open "$port" || port_open "$((port + 1))" || { echo "$port"; return; }
    done
    return 1
}

kc() { "$KUBECTL" --kubeconfig "$SERVER_DIR/kubeconfig" "$@"; }

start_server() {
    mkdir -p "$SERVER_DIR"
    KUBE_LOCAL_API_PORT="${KUBE_LOCAL_API_PORT:-$(free_port)}" \
        KUBE_LOCAL_ETCD_PORT="${KUBE_LOCAL_ETCD_PORT:-$(free_port)}" \
        "$KUBE_LOCAL" start "$SERVER_DIR" >/dev/null
    local dir files
    for dir in "${CRD_DIRS[@]}"; do
        [ -d "$SCHEMAS/$dir" ] || { echo "no CRDs at $SCHEMAS/$dir" >&2; return 1; }
    done
    # Every CRD of the platform's versions (and Gateway API's safe-upgrades
    # admission policy, which its standard install carries too).
    files="$(printf '%s,' "${CRD_DIRS[@]/#/$SCHEMAS/}" | sed 's/,$//')"
    kc apply --server-side -f "$files" >/dev/null
    kc wait --for=condition=Established --timeout=60s crd --all >/dev/null 2>&1
    printf '  kube-apiserver %s, CRDs installed: %s\n' \
        "$(kc version -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | tail -n 1)" \
        "$(kc get crd -o name | sed 's|.*/||' | tr '\n' ' ')" >&2
}

# Every SpinApp in $1 names an executor that exists in its namespace on the
# server, as spin-operator's admission webhook requires.
executors_exist() {
    local phase="$1" namespace executor status=0
    grep -q '^kind: SpinApp$' "$phase" || return 0
    while read -r namespace executor; do
        kc -n "$namespace" get spinappexecutor "$executor" >/dev/null 2>&1 || {
            echo "SpinApp in $namespace names executor $executor, which is not on the server when its phase is applied" >&2
            status=1
        }
    done < <("$TOOLS/python" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "SpinApp":
        print(d["metadata"].get("namespace", "default"), d["spec"].get("executor", ""))' "$phase")
    return "$status"
}

# Apply built manifests in deploy.sh's phases: dry run (warnings are errors),
# then for real, so the next phase finds what this one created.
apply_in_deploy_order() {
    local manifests="$1" label="$2" dir phase out status=0
    local phases=()
    dir="$SERVER_WORK/phases-$label"
    mapfile -t phases < <(scripts/deploy.sh phases "$manifests" "$dir")
    for phase in "${phases[@]}"; do
        executors_exist "$phase" || status=1
        if ! out="$(kc apply --server-side --force-conflicts --field-manager=jobs-platform-deploy \
            --dry-run=server --warnings-as-errors -f "$phase" 2>&1)"; then
            printf '%s\n' "$out" | grep -v ' serverside-applied (server dry run)$' >&2
            status=1
            break
        fi
        # The last phase needs no successor to find it.
        [ "$phase" = "${phases[-1]}" ] ||
            kc apply --server-side --force-conflicts --field-manager=jobs-platform-deploy -f "$phase" >/dev/null
    done
    return "$status"
}

server_deploy_order() {
    local file label status=0
    sed "s/ACME_EMAIL_PLACEHOLDER/ops@example.com/" kubernetes/platform/cluster-issuers.yaml \
        >"$SERVER_WORK/cluster-issuers.yaml"
    if kc apply --server-side --dry-run=server --warnings-as-errors -f "$SERVER_WORK/cluster-issuers.yaml" >/dev/null; then
        printf '  kubernetes/platform/cluster-issuers.yaml: accepted\n' >&2
    else
        status=1
    fi
    for file in "$BUILD_DIR"/*.yaml; do
        label="$(basename "$file" .yaml)"
        [ "$label" = base ] && continue
        if apply_in_deploy_order "$file" "$label"; then
            printf '  %s: accepted in deploy order\n' "$label" >&2
        else
            printf '  %s: REJECTED\n' "$label" >&2
            status=1
        fi
    done
    return "$status"
}

# fixtures/kubernetes/server-valid passes; each server-broken-* is rejected
# with the message in its expected.txt (what only an API server catches).
server_fixtures() {
    local dir name expected out status=0
    kc kustomize "$FIXTURES/server-valid" >"$SERVER_WORK/fixture-server-valid.yaml"
    if ! apply_in_deploy_order "$SERVER_WORK/fixture-server-valid.yaml" fixture-server-valid; then
        echo "  server-valid: rejected" >&2
        status=1
    fi
    for dir in "$FIXTURES"/server-broken-*/; do
        name="$(basename "$dir")"
        expected="$(cat "$dir/expected.txt")"
        kc kustomize "$dir" >"$SERVER_WORK/fixture-$name.yaml"
        if out="$(apply_in_deploy_order "$SERVER_WORK/fixture-$name.yaml" "fixture-$name" 2>&1)"; then
            printf '  %s: accepted, but must be rejected (%s)\n' "$name" "$expected" >&2
            status=1
        elif [[ "$out" != *"$expected"* ]]; then
            printf '  %s: rejected without "%s":\n%s\n' "$name" "$expected" "$out" >&2
            status=1
        else
            printf '  %s: rejected (%s)\n' "$name" "$expected" >&2
        fi
    done
    return "$status"
}

server_checks() {
    local status=0 begun=$SECONDS
    start_server || return 1
    printf '  started and CRDs installed in %ss\n' "$((SECONDS - begun))" >&2
    step "API server: overlays and components in deploy order"
    server_deploy_order || status=1
    step "API server: server-* fixtures"
    server_fixtures || status=1
    "$KUBE_LOCAL" stop "$SERVER_DIR"
    printf '  API server checks took %ss; kube-apiserver and etcd stopped\n' "$((SECONDS - begun))" >&2
    return "$status"
}

# The API server checks run in the background, beside the offline checks
# below; their verdict and log come at the end. cleanup() stops the server
# whatever happens.
if server_available; then
    SERVER_WORK="$BUILD_DIR/server"
    SERVER_DIR="$SERVER_WORK/kube-local"
    mkdir -p "$SERVER_WORK"
    step "kube-apiserver: starting ($KUBE_LOCAL), checks run in the background"
    server_checks >"$SERVER_WORK/log" 2>&1 &
    SERVER_PID=$!
    VALIDATION="kube-apiserver server-side dry run"
else
    step "kube-apiserver: not available (needs $KUBE_LOCAL, etcd and $SCHEMAS): offline schema checks only"
    VALIDATION="offline schemas only (no API server)"
fi

# --- offline checks --------------------------------------------------------------

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

check "shellcheck (platform scripts, this script)" \
    "$TOOLS/shellcheck" -x kubernetes/platform/*.sh scripts/check-kubernetes.sh

server_verdict() {
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    cat "$SERVER_WORK/log" >&2
    return "$status"
}
if [ -n "$SERVER_PID" ]; then
    check "kube-apiserver: overlays and components in deploy order, server-* fixtures" server_verdict
fi

if [ "${#CHECKS_FAILED[@]}" -gt 0 ]; then
    printf '\nkubernetes checks FAILED (validation: %s, %ss): %s\n' "$VALIDATION" "$((SECONDS - started))" \
        "${CHECKS_FAILED[*]}" >&2
    exit 1
fi
printf '\nkubernetes checks passed in %ss: kustomize build, %s, schemas, project checks, checkov, yamllint, shellcheck\n' \
    "$((SECONDS - started))" "$VALIDATION" >&2
