#!/usr/bin/env bash
# Rolls a changed Shim (shim-spin.yaml: new version or checksum) out to the
# nodes that already run the old one, or waits until the shim is on every
# node.
#
# runtime-class-manager 0.2.0 labels a node `<shim>=provisioned` once its
# install job has run there and never installs on such a node again, so an
# applied change only reaches new nodes. This script takes one spin=true node
# at a time: cordon, drain (PodDisruptionBudgets respected, so the api and the
# edge stay up), remove the label so runtime-class-manager installs the shim
# from the current Shim, wait for `provisioned`, uncordon. Then it waits until
# the Shim reports every node ready.
#
#   kubernetes/platform/shim-reprovision.sh              roll out to every node
#   kubernetes/platform/shim-reprovision.sh NODE...      only these nodes
#   kubernetes/platform/shim-reprovision.sh --wait-only  only wait
#
# Environment: SHIM_NAME (default spin-v2), SHIM_NODE_SELECTOR (default
# spin=true), SHIM_TIMEOUT (seconds per wait, default 900).
set -euo pipefail

shim="${SHIM_NAME:-spin-v2}"
selector="${SHIM_NODE_SELECTOR:-spin=true}"
timeout="${SHIM_TIMEOUT:-900}"

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Until the Shim's status counts every selected node, all of them ready.
wait_all_ready() {
    local deadline=$((SECONDS + timeout)) want nodes ready
    want="$(kubectl get nodes -l "$selector" -o name | wc -l)"
    [ "$want" -gt 0 ] || die "no node matches $selector: the Wasm node pool must be labelled (Terraform)"
    until nodes="$(kubectl get shim "$shim" -o jsonpath='{.status.nodes}')" &&
        ready="$(kubectl get shim "$shim" -o jsonpath='{.status.nodesReady}')" &&
        [ "${nodes:-0}" -eq "$want" ] && [ "${ready:-0}" -eq "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "Shim $shim: ${ready:-0}/${nodes:-0} nodes ready, expected $want"
        printf 'Shim %s: %s/%s nodes ready (of %s)\n' "$shim" "${ready:-0}" "${nodes:-0}" "$want"
        sleep 10
    done
    printf 'Shim %s: %s/%s nodes ready\n' "$shim" "$ready" "$want"
}

reprovision() {
    local node="$1" deadline=$((SECONDS + timeout)) state
    printf '\n==> %s\n' "$node"
    kubectl cordon "$node"
    kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout="${timeout}s"
    kubectl label node "$node" "$shim-"
    until state="$(kubectl get node "$node" -o "jsonpath={.metadata.labels.$shim}")" && [ "$state" = provisioned ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "$node: shim $shim not provisioned (label: ${state:-none})"
        sleep 5
    done
    kubectl uncordon "$node"
}

kubectl get shim "$shim" >/dev/null || die "no Shim $shim: apply kubernetes/platform/shim-spin.yaml first"
if [ "${1:-}" = --wait-only ]; then
    wait_all_ready
    exit 0
fi
if [ "$#" -gt 0 ]; then
    nodes=("$@")
else
    mapfile -t nodes < <(kubectl get nodes -l "$selector" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
fi
for node in "${nodes[@]}"; do
    reprovision "$node"
done
wait_all_ready
