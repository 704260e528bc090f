#!/usr/bin/env bash
# Installs what the jobs-platform app needs on an AKS cluster, in order:
#   1. the Gateway API CRDs (standard channel v1.5.1, the bundle NGINX Gateway
#      Fabric 2.6.7 is built against);
#   2. cert-manager v1.21.1 with its Gateway API support (needs 1.);
#   3. runtime-class-manager 0.2.0 and the Shim (containerd-shim-spin v0.24.0,
#      RuntimeClass wasmtime-spin-v2), then waits until the shim is installed
#      on every spin=true node;
#   4. the spin-operator v0.6.1 CRDs and chart (two replicas: its admission
#      webhook is fail-closed);
#   5. NGINX Gateway Fabric 2.6.7 (GatewayClass `nginx`), images by digest;
#   6. the Let's Encrypt ClusterIssuers (staging and production).
# Every step is an apply or upgrade, so re-running it is safe. The Gateways,
# the SpinAppExecutor and everything else of the app ship with the overlays
# (../edge, ../base), applied by scripts/deploy.sh.
#
#   ACME_EMAIL=ops@example.com kubernetes/platform/install.sh
#   kubernetes/platform/install.sh --record-pins
#       Download the shim release asset and resolve the NGINX Gateway Fabric
#       image tags once, and write their SHA-256 digests into shim-spin.yaml
#       and this script (review and commit the change). Needs curl and
#       sha256sum, no cluster.
#
# Needs: kubectl and helm 3.8+ pointing at the cluster, and
#   ACME_EMAIL         contact address for Let's Encrypt
#   SPIN_NODE_SELECTOR optional: label selector of extra nodes to label
#                      spin=true, or `all`. Terraform already labels the `wasm`
#                      node pool spin=true, so the default is to label nothing.
#   SHIM_TIMEOUT       seconds to wait for the shim on every node (default 900)
set -euo pipefail

readonly GATEWAY_API_VERSION="v1.5.1"
readonly CERT_MANAGER_VERSION="v1.21.1"
readonly RUNTIME_CLASS_MANAGER_VERSION="0.2.0"
readonly SPIN_OPERATOR_VERSION="0.6.1"
readonly NGF_VERSION="2.6.7"
# Digests of ghcr.io/nginx/nginx-gateway-fabric:2.6.7 (control plane) and
# ghcr.io/nginx/nginx-gateway-fabric/nginx:2.6.7 (data plane), written by
# --record-pins.
NGF_IMAGE_DIGEST=""
NGINX_IMAGE_DIGEST=""

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The digest a registry serves for repository:tag (the OCI index for
# multi-platform images), asked anonymously like `docker pull` does.
registry_digest() {
    local registry="$1" repository="$2" tag="$3" token
    token="$(curl -fsS "https://$registry/token?scope=repository:$repository:pull" |
        sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
    curl -fsSI -H "Authorization: Bearer $token" \
        -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' \
        "https://$registry/v2/$repository/manifests/$tag" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

record_pins() {
    local url sum tmp ngf nginx
    url="$(sed -n 's/^ *location: //p' "$here/shim-spin.yaml")"
    tmp="$(mktemp)"
    step "SHA-256 of $url"
    curl -fsSL -o "$tmp" "$url"
    sum="$(sha256sum "$tmp" | cut -d' ' -f1)"
    rm -f "$tmp"
    sed -i "s|^\( *sha256:\) .*|\1 \"$sum\"|" "$here/shim-spin.yaml"
    step "digests of the NGINX Gateway Fabric $NGF_VERSION images"
    ngf="$(registry_digest ghcr.io nginx/nginx-gateway-fabric "$NGF_VERSION")"
    nginx="$(registry_digest ghcr.io nginx/nginx-gateway-fabric/nginx "$NGF_VERSION")"
    [[ "$ngf" =~ ^sha256:[0-9a-f]{64}$ && "$nginx" =~ ^sha256:[0-9a-f]{64}$ ]] ||
        die "could not resolve the image digests (got '$ngf' and '$nginx')"
    sed -i -e "s|^NGF_IMAGE_DIGEST=.*|NGF_IMAGE_DIGEST=\"$ngf\"|" \
        -e "s|^NGINX_IMAGE_DIGEST=.*|NGINX_IMAGE_DIGEST=\"$nginx\"|" "$here/install.sh"
    printf 'shim sha256 %s\nnginx-gateway-fabric %s\nnginx %s\nreview and commit kubernetes/platform/\n' \
        "$sum" "$ngf" "$nginx"
}

if [ "${1:-}" = --record-pins ]; then
    record_pins
    exit 0
fi

: "${ACME_EMAIL:?set ACME_EMAIL to the ACME contact address}"
SPIN_NODE_SELECTOR="${SPIN_NODE_SELECTOR-}"
grep -Eq '^ *sha256: "[0-9a-f]{64}"$' "$here/shim-spin.yaml" ||
    die "shim-spin.yaml has no recorded sha256: run kubernetes/platform/install.sh --record-pins and commit it"
[[ "$NGF_IMAGE_DIGEST" =~ ^sha256:[0-9a-f]{64}$ && "$NGINX_IMAGE_DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]] ||
    die "the NGINX Gateway Fabric image digests are not recorded: run kubernetes/platform/install.sh --record-pins and commit it"

step "Checking the AKS add-ons the app relies on"
# All three come from Terraform (key_vault_secrets_provider,
# workload_identity_enabled, the KEDA add-on).
kubectl get csidriver secrets-store.csi.k8s.io >/dev/null ||
    die "Secrets Store CSI driver missing: enable the azure-keyvault-secrets-provider add-on"
kubectl get mutatingwebhookconfiguration azure-wi-webhook-mutating-webhook-configuration >/dev/null ||
    die "workload identity webhook missing: enable workload identity on the cluster"
kubectl get crd scaledobjects.keda.sh >/dev/null ||
    die "KEDA missing: enable the AKS KEDA add-on (Terraform)"

step "Gateway API ${GATEWAY_API_VERSION} CRDs (standard channel)"
kubectl apply --server-side --force-conflicts \
    -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml"
kubectl wait --for=condition=Established --timeout=60s \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io

step "cert-manager ${CERT_MANAGER_VERSION} (Gateway API support on)"
helm upgrade --install cert-manager cert-manager \
    --repo https://charts.jetstack.io --version "${CERT_MANAGER_VERSION}" \
    --namespace cert-manager --create-namespace \
    --values "${here}/cert-manager-values.yaml" --wait

step "runtime-class-manager ${RUNTIME_CLASS_MANAGER_VERSION}"
helm upgrade --install runtime-class-manager \
    oci://ghcr.io/spinframework/charts/runtime-class-manager \
    --version "${RUNTIME_CLASS_MANAGER_VERSION}" \
    --namespace runtime-class-manager --create-namespace --wait

step "Shim spin-v2 (containerd-shim-spin v0.24.0) on every spin=true node"
kubectl apply -f "${here}/shim-spin.yaml"
case "${SPIN_NODE_SELECTOR}" in
    "") ;;
    all) kubectl label node --all spin=true --overwrite ;;
    *) kubectl label node -l "${SPIN_NODE_SELECTOR}" spin=true --overwrite ;;
esac
"${here}/shim-reprovision.sh" --wait-only

step "spin-operator ${SPIN_OPERATOR_VERSION}: CRDs, then the chart (two replicas)"
# Server-side apply: the SpinApp CRD is too large for the last-applied annotation.
kubectl apply --server-side --force-conflicts \
    -f "https://github.com/spinframework/spin-operator/releases/download/v${SPIN_OPERATOR_VERSION}/spin-operator.crds.yaml"
helm upgrade --install spin-operator \
    oci://ghcr.io/spinframework/charts/spin-operator \
    --version "${SPIN_OPERATOR_VERSION}" \
    --namespace spin-operator --create-namespace \
    --set controllerManager.replicas=2 --wait

step "NGINX Gateway Fabric ${NGF_VERSION} (GatewayClass nginx)"
helm upgrade --install ngf oci://ghcr.io/nginx/charts/nginx-gateway-fabric \
    --version "${NGF_VERSION}" \
    --namespace nginx-gateway --create-namespace \
    --values "${here}/nginx-gateway-fabric-values.yaml" \
    --set "nginxGateway.image.tag=${NGF_VERSION}@${NGF_IMAGE_DIGEST}" \
    --set "nginx.image.tag=${NGF_VERSION}@${NGINX_IMAGE_DIGEST}" --wait
kubectl wait --for=condition=Accepted --timeout=120s gatewayclass/nginx

step "ClusterIssuers letsencrypt-staging and letsencrypt"
sed "s/ACME_EMAIL_PLACEHOLDER/${ACME_EMAIL}/" "${here}/cluster-issuers.yaml" | kubectl apply -f -

step "Done: deploy the app with scripts/deploy.sh <env> <image>"
