#!/usr/bin/env bash
# Push the Spin application to ACR, or deploy it to an AKS environment.
#
#   scripts/deploy.sh push <acr-name> <repository> <tag> [<tag>...]
#       `spin registry push` the built app (run `spin build` first) as
#       <acr>.azurecr.io/<repository>:<tag> for every tag, signed in with an
#       `az acr login --expose-token` token, with scripts/push-artifact.sh.
#       Prints the image reference to deploy, pinned by digest, and, in
#       GitHub Actions, writes it to the step output `image`.
#
#   scripts/deploy.sh <dev|prod> <image-ref>
#       Copy kubernetes/ to a temporary directory, point the overlay's
#       `jobs-platform` image at <image-ref>, build it with kubectl kustomize,
#       check that the SpinApps `api` and `worker` carry that image, and apply
#       it server-side in phases: namespaces, then the SpinAppExecutor;
#       then, once spin-operator's admission webhook accepts the SpinApps
#       (server-side dry run, bounded retries: it reads executors through a
#       cache), everything else (bounded retries). Wait until both SpinApps
#       are ready, then patch the Deployments spin-operator created with what
#       SpinApp cannot express (prod: the api's zone spread). Prints the
#       public host of the built HTTPRoute and, in GitHub Actions, writes the
#       step outputs `host` and `tls_issuer`.
#
#   scripts/deploy.sh phases <manifests.yaml> <dir>
#       Split built manifests into the apply phases above, as files in <dir>
#       (printed in apply order); scripts/check-kubernetes.sh applies them
#       in this order to a real API server.
#
#   scripts/deploy.sh outputs <dev|prod>
#       Write kubernetes/overlays/<env>/terraform-outputs.env from
#       `terraform output` of the environment's state (terraform/ initialised
#       with environments/<env>/backend.hcl).
#
# Environment:
#   AKS_CLUSTER_NAME, AKS_RESOURCE_GROUP  when both are set, fetch the cluster's
#       credentials with `az aks get-credentials` and convert them for
#       kubelogin (Azure CLI sign-in) into a temporary kubeconfig; otherwise
#       the current kubectl context is used.
#   DEPLOY_DRY_RUN=1   build and check the manifests, print them, apply and
#       patch nothing (stderr names the phases and the patches that would follow).
#   DEPLOY_TIMEOUT     seconds to wait for the SpinApps, and for each patched
#       Deployment's rollout (default 600).
#   DEPLOY_ATTEMPTS    tries of the webhook check and of each apply (default 12),
#   DEPLOY_RETRY_DELAY seconds between them (default 5).
#   KUBECTL            kubectl to use (default: .venv/deploy or .venv/tools
#       kubectl, the pinned one scripts/check-kubernetes.sh builds the
#       overlays with, else kubectl on PATH).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

NAMESPACE=jobs-platform
SPIN_APPS=(api worker)
BASE_IMAGE=jobs-platform
DEPLOY_TMP=""
# Strategic merge patches for the Deployments spin-operator creates, applied
# after the SpinApps are ready (SpinApp 0.6.1 has no affinity or topology
# fields): <env>:<Deployment>:<patch file under kubernetes/>. The operator
# applies its Deployments server-side and owns only the fields it sets, so a
# patch stays; applying it again changes nothing and starts no rollout.
DEPLOYMENT_PATCHES=(
    "prod:api:overlays/prod/api-zone-spread-patch.yaml"
)

usage() {
    sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The pinned tools from .venv/deploy or .venv/tools when bootstrap installed them.
pick_tool() {
    local name="$1"
    if [ -x "$VENV_DIR/deploy/bin/$name" ]; then
        printf '%s\n' "$VENV_DIR/deploy/bin/$name"
    elif [ -x "$VENV_DIR/tools/bin/$name" ]; then
        printf '%s\n' "$VENV_DIR/tools/bin/$name"
    elif command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
    else
        return 1
    fi
}

python_with_yaml() {
    local py
    for py in "$VENV_DIR/deploy/bin/python" "$VENV_DIR/tools/bin/python" python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
            printf '%s\n' "$py"
            return
        fi
    done
    die "need python3 with PyYAML (run scripts/bootstrap.sh)"
}

cmd_push() {
    [ "$#" -ge 3 ] || usage
    local acr="$1" repository="$2" tags=("${@:3}") token_json server token ref
    command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required"
    command -v spin >/dev/null 2>&1 || die "the Spin CLI (spin) is required"

    step "ACR token for $acr"
    token_json="$(az acr login --name "$acr" --expose-token --output json --only-show-errors)"
    server="$(printf '%s' "$token_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["loginServer"])')"
    token="$(printf '%s' "$token_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')"
    # The token is the password; the user name of an ACR access token is the null GUID.
    printf '%s' "$token" | spin registry login --username 00000000-0000-0000-0000-000000000000 --password-stdin "$server"

    # The same push and digest capture as scripts/check-artifact.sh runs
    # against its local registry; only the registry differs.
    ref="$("$ROOT/scripts/push-artifact.sh" "$server/$repository:${tags[0]}" "${tags[@]:1}")"
    printf '%s\n' "$ref"
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        printf 'image=%s\n' "$ref" >>"$GITHUB_OUTPUT"
    fi
}

# Rewrite the overlay's `images:` entry for jobs-platform (what `kustomize edit
# set image jobs-platform=<ref>` does) with a small YAML edit.
set_image() {
    local kustomization="$1" ref="$2"
    "$(python_with_yaml)" - "$kustomization" "$ref" "$BASE_IMAGE" <<'PY'
import re
import sys

import yaml

path, ref, name = sys.argv[1:4]
match = re.fullmatch(r"(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?", ref)
if not match or "/" not in match["name"]:
    sys.exit(f"error: not an image reference with a registry: {ref!r}")
with open(path, encoding="utf-8") as f:
    doc = yaml.safe_load(f) or {}
entry = {"name": name, "newName": match["name"]}
if match["digest"]:
    entry["digest"] = match["digest"]
elif match["tag"]:
    entry["newTag"] = match["tag"]
else:
    sys.exit(f"error: image reference needs a tag or a digest: {ref!r}")
images = [i for i in doc.get("images") or [] if i.get("name") != name]
doc["images"] = images + [entry]
with open(path, "w", encoding="utf-8") as f:
    yaml.safe_dump(doc, f, sort_keys=False)
PY
}

# Fail unless every SpinApp we deploy carries exactly the image.
check_manifests() {
    local manifests="$1" ref="$2"
    "$(python_with_yaml)" - "$manifests" "$ref" "${SPIN_APPS[@]}" <<'PY'
import sys

import yaml

path, ref, *apps = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
found = {
    d["metadata"]["name"]: d.get("spec", {}).get("image")
    for d in docs
    if d.get("kind") == "SpinApp" and d.get("metadata", {}).get("namespace") == "jobs-platform"
}
errors = []
for app in apps:
    if app not in found:
        errors.append(f"SpinApp {app} is not in the overlay")
    elif found[app] != ref:
        errors.append(f"SpinApp {app} has image {found[app]!r}, expected {ref!r}")
for e in errors:
    print(f"error: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}

# Split built manifests into the apply phases, one file each in $2, printed
# in apply order:
#   1-namespaces.yaml  Namespaces
#   2-executors.yaml   SpinAppExecutors (spin-operator's webhook rejects a
#                      SpinApp whose executor it cannot find)
#   3-app.yaml         everything else, SpinApps last
split_phases() {
    local manifests="$1" dir="$2"
    mkdir -p "$dir"
    "$(python_with_yaml)" - "$manifests" "$dir" <<'PY'
import sys

import yaml

path, out = sys.argv[1:3]
with open(path, encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
first = {"Namespace": "1-namespaces.yaml", "SpinAppExecutor": "2-executors.yaml"}
phases = {name: [d for d in docs if d.get("kind") == kind] for kind, name in first.items()}
rest = [d for d in docs if d.get("kind") not in first]
phases["3-app.yaml"] = [d for d in rest if d.get("kind") != "SpinApp"] + [d for d in rest if d.get("kind") == "SpinApp"]
for name, phase in phases.items():
    if not phase:
        continue
    target = f"{out}/{name}"
    with open(target, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(phase, f, sort_keys=False)
    print(target)
PY
}

# The SpinApps of a manifest file, for the webhook check.
only_spin_apps() {
    "$(python_with_yaml)" - "$1" <<'PY'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "SpinApp"]
yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
PY
}

# "<public host> <TLS issuer>" of the built edge: the hostname of the HTTPRoute
# on the public Gateway's HTTPS listener and that Gateway's ClusterIssuer.
edge_settings() {
    "$(python_with_yaml)" - "$1" <<'PY'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
hosts = [
    host
    for d in docs
    if d.get("kind") == "HTTPRoute"
    for parent in d.get("spec", {}).get("parentRefs") or []
    if parent.get("name") == "public" and parent.get("sectionName") == "https"
    for host in d["spec"].get("hostnames") or []
]
issuers = [
    (d.get("metadata", {}).get("annotations") or {}).get("cert-manager.io/cluster-issuer", "")
    for d in docs
    if d.get("kind") == "Gateway" and d["metadata"]["name"] == "public"
]
if len(set(hosts)) != 1 or len(issuers) != 1:
    sys.exit(f"error: expected one public host and one public Gateway, found hosts {hosts} and {len(issuers)} Gateways")
print(hosts[0], issuers[0] or "none")
PY
}

# Run a command up to DEPLOY_ATTEMPTS times, DEPLOY_RETRY_DELAY seconds apart.
retry() {
    local what="$1" attempt=1 attempts="${DEPLOY_ATTEMPTS:-12}"
    shift
    until "$@"; do
        [ "$attempt" -lt "$attempts" ] || { printf '%s: failed %s times\n' "$what" "$attempts" >&2; return 1; }
        printf '%s: attempt %s of %s failed, retrying in %ss\n' "$what" "$attempt" "$attempts" "${DEPLOY_RETRY_DELAY:-5}" >&2
        attempt=$((attempt + 1))
        sleep "${DEPLOY_RETRY_DELAY:-5}"
    done
}

# Apply the phases in order. Before the phase with the SpinApps, wait until a
# server-side dry run of the SpinApps passes: spin-operator's webhook
# (failurePolicy Fail) looks the executor up through its informer cache, so
# it can reject a SpinApp for a moment after the executor was created.
apply_phases() {
    local kubectl="$1" dir="$2" phase spin_apps
    local apply=("$kubectl" apply --server-side --force-conflicts --field-manager=jobs-platform-deploy)
    while IFS= read -r phase; do
        spin_apps="$dir/$(basename "$phase" .yaml).spinapps.yaml"
        only_spin_apps "$phase" >"$spin_apps"
        if [ -s "$spin_apps" ]; then
            step "waiting until the admission webhook accepts the SpinApps"
            retry "server-side dry run of the SpinApps" "${apply[@]}" --dry-run=server -f "$spin_apps" >/dev/null
        fi
        step "kubectl apply --server-side $(basename "$phase")"
        retry "apply $(basename "$phase")" "${apply[@]}" -f "$phase"
    done < <(split_phases "$dir/manifests.yaml" "$dir/phases")
}

use_aks_credentials() {
    local dir="$1"
    [ -n "${AKS_CLUSTER_NAME:-}" ] && [ -n "${AKS_RESOURCE_GROUP:-}" ] || return 0
    command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required for AKS_CLUSTER_NAME"
    command -v kubelogin >/dev/null 2>&1 || die "kubelogin is required: the cluster uses Entra ID authentication"
    export KUBECONFIG="$dir/kubeconfig"
    step "credentials for AKS $AKS_RESOURCE_GROUP/$AKS_CLUSTER_NAME"
    az aks get-credentials --resource-group "$AKS_RESOURCE_GROUP" --name "$AKS_CLUSTER_NAME" \
        --file "$KUBECONFIG" --overwrite-existing --only-show-errors
    # Use the Azure CLI sign-in (the workflow's OIDC login) for the cluster's Entra ID auth.
    kubelogin convert-kubeconfig --login azurecli
}

# Wait for the SpinApp's Deployment to roll out and the SpinApp to report all replicas ready.
wait_spin_app() {
    local kubectl="$1" app="$2" ref="$3" deadline=$((SECONDS + ${DEPLOY_TIMEOUT:-600})) images want ready
    step "waiting for SpinApp $app"
    # The operator updates the Deployment it created (named like the SpinApp)
    # after the apply: wait until the Deployment carries the new image first,
    # so the rollout status below is about this deployment.
    until images="$("$kubectl" -n "$NAMESPACE" get deployment "$app" \
        -o jsonpath='{.spec.template.spec.containers[*].image}' 2>/dev/null)" &&
        [[ " $images " == *" $ref "* ]]; do
        [ "$SECONDS" -lt "$deadline" ] || die "Deployment $app never picked up $ref (has: ${images:-none})"
        sleep 5
    done
    "$kubectl" -n "$NAMESPACE" rollout status "deployment/$app" --timeout="$((deadline - SECONDS))s"
    until want="$("$kubectl" -n "$NAMESPACE" get spinapp "$app" -o jsonpath='{.spec.replicas}')" &&
        ready="$("$kubectl" -n "$NAMESPACE" get spinapp "$app" -o jsonpath='{.status.readyReplicas}')" &&
        [ -n "$ready" ] && [ "$ready" -ge "${want:-1}" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "SpinApp $app: ${ready:-0}/${want:-?} replicas ready"
        sleep 5
    done
    printf 'SpinApp %s: %s/%s replicas ready\n' "$app" "$ready" "$want" >&2
}

# The DEPLOYMENT_PATCHES entries of an environment, as "<Deployment>:<file>".
deployment_patches() {
    local env="$1" entry
    for entry in "${DEPLOYMENT_PATCHES[@]}"; do
        [ "${entry%%:*}" = "$env" ] && printf '%s\n' "${entry#*:}"
    done
    return 0
}

# Patch the operator's Deployments of the environment and wait for their rollout.
patch_deployments() {
    local kubectl="$1" env="$2" dir="$3" entry deployment file
    while IFS= read -r entry; do
        deployment="${entry%%:*}"
        file="$dir/${entry#*:}"
        step "patch deployment $deployment (${entry#*:})"
        "$kubectl" -n "$NAMESPACE" patch deployment "$deployment" --type strategic \
            --field-manager=jobs-platform-deploy --patch-file "$file"
        "$kubectl" -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout="${DEPLOY_TIMEOUT:-600}s"
    done < <(deployment_patches "$env")
}

cmd_deploy() {
    [ "$#" -eq 2 ] || usage
    local env="$1" ref="$2" overlay tmp kubectl app entry host issuer
    overlay="$ROOT/kubernetes/overlays/$env"
    [ -f "$overlay/kustomization.yaml" ] || die "no overlay at kubernetes/overlays/$env"
    kubectl="${KUBECTL:-$(pick_tool kubectl)}" || die "kubectl is required (run scripts/bootstrap.sh)"

    tmp="$(mktemp -d)"
    DEPLOY_TMP="$tmp"
    trap 'rm -rf "$DEPLOY_TMP"' EXIT
    # The whole tree, so the overlay's ../../base and ../../components resolve.
    cp -R "$ROOT/kubernetes" "$tmp/kubernetes"

    step "overlay $env with image $ref"
    set_image "$tmp/kubernetes/overlays/$env/kustomization.yaml" "$ref"
    "$kubectl" kustomize "$tmp/kubernetes/overlays/$env" >"$tmp/manifests.yaml"
    check_manifests "$tmp/manifests.yaml" "$ref"
    # Fail before applying anything if a patch is missing.
    while IFS= read -r entry; do
        [ -f "$tmp/kubernetes/${entry#*:}" ] || die "patch for deployment ${entry%%:*} not found: kubernetes/${entry#*:}"
    done < <(deployment_patches "$env")

    read -r host issuer < <(edge_settings "$tmp/manifests.yaml") || die "no public host in the overlay"
    printf 'public host: %s (certificate from %s)\n' "$host" "$issuer" >&2
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        printf 'host=%s\ntls_issuer=%s\n' "$host" "$issuer" >>"$GITHUB_OUTPUT"
    fi

    if [ "${DEPLOY_DRY_RUN:-0}" = 1 ]; then
        cat "$tmp/manifests.yaml"
        while IFS= read -r entry; do
            printf 'dry run: would apply %s\n' "$(basename "$entry")" >&2
        done < <(split_phases "$tmp/manifests.yaml" "$tmp/phases")
        while IFS= read -r entry; do
            printf 'dry run: after the SpinApps are ready, would patch deployment %s with kubernetes/%s\n' \
                "${entry%%:*}" "${entry#*:}" >&2
        done < <(deployment_patches "$env")
        step "dry run: nothing applied"
        return
    fi

    use_aks_credentials "$tmp"
    apply_phases "$kubectl" "$tmp"
    for app in "${SPIN_APPS[@]}"; do
        wait_spin_app "$kubectl" "$app" "$ref"
    done
    patch_deployments "$kubectl" "$env" "$tmp/kubernetes"
    step "deployed $ref to $env"
}

# The non-secret Terraform outputs the overlays use, as terraform-outputs.env.
TERRAFORM_OUTPUTS=(acr_login_server key_vault_name tenant_id api_identity_client_id worker_identity_client_id
    storage_account_name storage_blob_endpoint results_container_name redis_hostname redis_port
    edge_public_ip_name edge_public_ip_resource_group edge_public_ip_address edge_fqdn)

cmd_outputs() {
    [ "$#" -eq 1 ] || usage
    local env="$1" file json
    file="$ROOT/kubernetes/overlays/$env/terraform-outputs.env"
    [ -f "$file" ] || die "no kubernetes/overlays/$env/terraform-outputs.env"
    command -v terraform >/dev/null 2>&1 || die "terraform is required"
    json="$(terraform -chdir="$ROOT/terraform" output -json)"
    TF_OUTPUTS_JSON="$json" "$(python_with_yaml)" - "$file" "$env" "${TERRAFORM_OUTPUTS[@]}" <<'PY'
import json
import os
import sys

path, env, *names = sys.argv[1:]
outputs = json.loads(os.environ["TF_OUTPUTS_JSON"])
missing = [n for n in names if n not in outputs]
if missing:
    sys.exit(f"error: terraform output lacks {', '.join(missing)}")
lines = [
    f"# Values of `terraform output` for the {env} environment, written by",
    "# `scripts/deploy.sh outputs`. None of these is a secret.",
]
lines += [f"{n}={outputs[n]['value']}" for n in names]
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
PY
    step "wrote kubernetes/overlays/$env/terraform-outputs.env: run scripts/check-kubernetes.sh and commit it"
}

[ "$#" -ge 1 ] || usage
case "$1" in
    push) shift; cmd_push "$@" ;;
    phases) [ "$#" -eq 3 ] || usage; split_phases "$2" "$3" ;;
    outputs) shift; cmd_outputs "$@" ;;
    dev | prod) cmd_deploy "$@" ;;
    -h | --help) usage ;;
    *) die "unknown environment or command: $1 (dev, prod, push, phases or outputs)" ;;
esac
