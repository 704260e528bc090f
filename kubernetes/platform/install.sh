#!/usr/bin/env bash
# Installs what the jobs-platform SpinApps need on an AKS cluster, in order:
# cert-manager, runtime-class-manager and its Shim (RuntimeClass
# wasmtime-spin-v2), the spin-operator CRDs and chart, ingress-nginx and the
# Let's Encrypt ClusterIssuer. Every step is an apply/upgrade, so re-running it
# is safe. The SpinAppExecutor is namespaced and ships with the app (../base).
#
# Needs: kubectl and helm 3.8+ pointing at the cluster, and
#   ACME_EMAIL         contact address for Let's Encrypt
#   SPIN_NODE_SELECTOR optional: label selector of extra nodes to label
#                      spin=true, or `all`. Terraform already labels the `wasm`
#                      node pool spin=true, so the default is to label nothing.
#
# Usage: ACME_EMAIL=ops@example.com kubernetes/platform/install.sh
set -euo pipefail

readonly CERT_MANAGER_VERSION="v1.20.0"
readonly RUNTIME_CLASS_MANAGER_VERSION="0.2.0"
readonly SPIN_OPERATOR_VERSION="0.6.1"
readonly INGRESS_NGINX_VERSION="4.13.3"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here
: "${ACME_EMAIL:?set ACME_EMAIL to the ACME contact address}"
SPIN_NODE_SELECTOR="${SPIN_NODE_SELECTOR-}"

step() { printf '\n==> %s\n' "$*"; }

step "Checking the AKS add-ons the app relies on"
# Both come from Terraform (key_vault_secrets_provider, workload_identity_enabled).
kubectl get csidriver secrets-store.csi.k8s.io >/dev/null \
  || { echo "Secrets Store CSI driver missing: enable the azure-keyvault-secrets-provider add-on" >&2; exit 1; }
kubectl get mutatingwebhookconfiguration azure-wi-webhook-mutating-webhook-configuration >/dev/null \
  || { echo "workload identity webhook missing: enable workload identity on the cluster" >&2; exit 1; }

step "cert-manager ${CERT_MANAGER_VERSION} (spin-operator's webhook certificates, the Ingress certificate)"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=300s

step "runtime-class-manager ${RUNTIME_CLASS_MANAGER_VERSION}"
helm upgrade --install runtime-class-manager \
  oci://ghcr.io/spinframework/charts/runtime-class-manager \
  --version "${RUNTIME_CLASS_MANAGER_VERSION}" \
  --namespace runtime-class-manager --create-namespace --wait

step "Shim spin-v2 (containerd-shim-spin v0.24.0) and the spin=true node label"
kubectl apply -f "${here}/shim-spin.yaml"
case "${SPIN_NODE_SELECTOR}" in
  "") echo "nodes labelled spin=true: $(kubectl get nodes -l spin=true -o name | wc -l)" ;;
  all) kubectl label node --all spin=true --overwrite ;;
  *) kubectl label node -l "${SPIN_NODE_SELECTOR}" spin=true --overwrite ;;
esac
until kubectl get runtimeclass wasmtime-spin-v2 >/dev/null 2>&1; do
  echo "waiting for RuntimeClass wasmtime-spin-v2..."
  sleep 10
done

step "spin-operator ${SPIN_OPERATOR_VERSION}: CRDs, then the chart"
# Server-side apply: the SpinApp CRD is too large for the last-applied annotation.
kubectl apply --server-side --force-conflicts \
  -f "https://github.com/spinframework/spin-operator/releases/download/v${SPIN_OPERATOR_VERSION}/spin-operator.crds.yaml"
helm upgrade --install spin-operator \
  oci://ghcr.io/spinframework/charts/spin-operator \
  --version "${SPIN_OPERATOR_VERSION}" \
  --namespace spin-operator --create-namespace --wait

step "ingress-nginx ${INGRESS_NGINX_VERSION}"
helm upgrade --install ingress-nginx ingress-nginx \
  --repo https://kubernetes.github.io/ingress-nginx \
  --version "${INGRESS_NGINX_VERSION}" \
  --namespace ingress-nginx --create-namespace \
  --values "${here}/ingress-nginx-values.yaml" --wait

step "ClusterIssuer letsencrypt"
sed "s/ACME_EMAIL_PLACEHOLDER/${ACME_EMAIL}/" "${here}/cluster-issuer.yaml" | kubectl apply -f -

step "Done: deploy the app with kubectl apply -k kubernetes/overlays/<env>"
