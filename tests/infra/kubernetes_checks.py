"""Offline checks of the Kubernetes manifests under ``kubernetes/``.

Every kustomization (the base and each overlay) is built with ``kubectl
kustomize`` and every object of the result is checked:

* schemas: built-in kinds against the Kubernetes JSON schemas
  (``kubernetes-validate``, strict); SpinApp and SpinAppExecutor against the
  ``openAPIV3Schema`` of spin-operator's CRDs, made strict (no unknown fields);
* project rules: Spin variables against ``spin.toml``, ``secretKeyRef`` against
  what the SecretProviderClasses sync, ``configMapKeyRef`` against the
  ConfigMaps, pinned images, resources and ServiceAccounts on every workload,
  NetworkPolicy and PodDisruptionBudget selectors against the labels the pods
  will carry, the traffic the app needs against the NetworkPolicies, probes
  against the HTTP routes, and the Ingress body limit against ``max_body_bytes``.

Usage (from the repository root)::

    python tests/infra/kubernetes_checks.py                 # base and every overlay
    python tests/infra/kubernetes_checks.py kubernetes/overlays/dev
    python tests/infra/kubernetes_checks.py --manifests built.yaml --spin-toml spin.toml

Environment: ``SPINKUBE_CRDS_DIR`` (CRD directory, default
``../shared/schemas/spinkube`` relative to the repository root; when it does
not exist the CRDs of the pinned spin-operator release are downloaded into
``.tools/``), ``KUBERNETES_VERSION`` (schema version, default 1.33.0),
``KUBECTL`` (kubectl binary).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import kubernetes_validate
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

SPIN_OPERATOR_VERSION = "0.6.1"
CRDS_URL = (
    "https://github.com/spinframework/spin-operator/releases/download/"
    f"v{SPIN_OPERATOR_VERSION}/spin-operator.crds.yaml"
)
DEFAULT_KUBERNETES_VERSION = "1.33.0"

# Labels spin-operator 0.6.1 puts on every pod of a SpinApp, besides spec.podLabels
# (internal/controller/spinapp_controller.go, constructDeployment).
SPINAPP_NAME_LABEL = "core.spinkube.dev/app-name"
# The Service spin-operator creates for a SpinApp: same name, port 80.
SPINAPP_SERVICE_PORT = 80

# Kinds without a schema available offline, checked by the project rules below.
CHECKED_BY_PROJECT_RULES = {("secrets-store.csi.x-k8s.io", "SecretProviderClass")}

# Pods outside the app's namespaces that its policies refer to.
EXTERNAL_PODS = {
    # KEDA's operator (AKS add-on) reads the backlog for the worker's ScaledObject.
    "keda-operator": ("kube-system", {"app": "keda-operator"}),
    # NGINX Gateway Fabric's control plane (chart release `ngf`): the NGINX
    # agents of the Gateways connect to it.
    "gateway-control-plane": ("nginx-gateway", {"app.kubernetes.io/name": "nginx-gateway-fabric",
                                                "app.kubernetes.io/instance": "ngf"}),
    "dns": ("kube-system", {"k8s-app": "kube-dns"}),
}
# Labels NGINX Gateway Fabric 2.6 puts on the NGINX pods it runs for a Gateway
# (internal/controller/provisioner/objects.go, buildLabelsAndAnnotations).
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
# cert-manager's HTTP-01 solver pods (pkg/issuer/acme/http/pod.go): label and port.
ACME_SOLVER_LABEL = "acme.cert-manager.io/http01-solver"
ACME_SOLVER_PORT = 8089
INTERNAL_LB_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-internal"
PIP_NAME_ANNOTATION = "service.beta.kubernetes.io/azure-pip-name"
PIP_GROUP_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-resource-group"
# The operator routes of the api: only ever on an internal Gateway.
ADMIN_PATHS = ("/api/v1/admin", "/api/v1/admin/sweep", "/api/v1/admin/dead-letters", "/api/v1/admin/backlog")
PLATFORM_ISSUERS = "kubernetes/platform/cluster-issuers.yaml"
PLATFORM_SHIM = "kubernetes/platform/shim-spin.yaml"

POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class Finding:
    """One problem in one object of one build."""

    source: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.obj}: {self.message}"


@dataclass
class Workload:
    """What a workload's pods will look like once running."""

    ref: str
    kind: str
    name: str
    namespace: str
    labels: dict[str, str]
    service_account: str | None
    pod_automount: bool | None
    containers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    spinapp: dict[str, Any] | None = None
    pod_spec: dict[str, Any] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict)


# --- loading -------------------------------------------------------------------


def kubectl_binary() -> str:
    """The kubectl to build with: $KUBECTL, the tools venv, or PATH."""
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    venv = Path(os.environ.get("VENV_DIR", REPO_ROOT / ".venv"))
    candidate = venv / "tools" / "bin" / "kubectl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: run scripts/bootstrap.sh or set KUBECTL")
    return found


def build(kustomization: Path) -> list[dict[str, Any]]:
    """Builds a kustomization with `kubectl kustomize` and returns its objects."""
    result = subprocess.run(
        [kubectl_binary(), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"kubectl kustomize {kustomization} failed: {result.stderr.strip()}")
    return load_documents(result.stdout)


class BuildError(Exception):
    """A kustomization that does not build."""


# libyaml's safe loader where PyYAML has it (the CRDs are megabytes of YAML).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_documents(text: str) -> list[dict[str, Any]]:
    """Parses multi-document YAML, dropping empty documents."""
    return [doc for doc in yaml.load_all(text, Loader=YAML_LOADER) if doc]


def crds_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The directory holding spin-operator's CRDs, downloaded if need be."""
    configured = os.environ.get("SPINKUBE_CRDS_DIR", "../shared/schemas/spinkube")
    path = Path(configured)
    if not path.is_absolute():
        path = (repo_root / path).resolve()
    if path.is_dir() and any(path.glob("*.yaml")):
        return path
    cache = repo_root / ".tools" / "spinkube-crds" / f"v{SPIN_OPERATOR_VERSION}"
    target = cache / "spin-operator.crds.yaml"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"{path} not found: downloading {CRDS_URL}", file=sys.stderr)
        with urllib.request.urlopen(CRDS_URL, timeout=60) as response:  # noqa: S310 (fixed https URL)
            data = response.read()
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return cache


# The other CRDs the manifests use, at the versions kubernetes/platform installs:
# (folder under SHARED_SCHEMAS_DIR, files, the same files' release URL prefix).
CRD_SOURCES = [
    ("gateway-api/v1.5.1",
     ["gateway.networking.k8s.io_gatewayclasses.yaml", "gateway.networking.k8s.io_gateways.yaml",
      "gateway.networking.k8s.io_httproutes.yaml", "gateway.networking.k8s.io_grpcroutes.yaml",
      "gateway.networking.k8s.io_referencegrants.yaml"],
     "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.5.1/config/crd/standard/"),
    ("nginx-gateway-fabric/v2.6.7",
     ["gateway.nginx.org_nginxproxies.yaml", "gateway.nginx.org_clientsettingspolicies.yaml",
      "gateway.nginx.org_proxysettingspolicies.yaml"],
     "https://raw.githubusercontent.com/nginx/nginx-gateway-fabric/v2.6.7/config/crd/bases/"),
    ("cert-manager/v1.21.1",
     ["cert-manager.io_certificates.yaml", "cert-manager.io_certificaterequests.yaml",
      "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml"],
     "https://raw.githubusercontent.com/cert-manager/cert-manager/v1.21.1/deploy/crds/"),
    ("keda/v2.20.2",
     ["keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"],
     "https://raw.githubusercontent.com/kedacore/keda/v2.20.2/config/crd/bases/"),
    ("secrets-store-csi-driver/v1.6.0",
     ["secrets-store.csi.x-k8s.io_secretproviderclasses.yaml"],
     "https://raw.githubusercontent.com/kubernetes-sigs/secrets-store-csi-driver/v1.6.0/config/crd/bases/"),
]


def schema_dirs(repo_root: Path = REPO_ROOT) -> list[Path]:
    """Directories with every CRD the manifests use: ../shared/schemas, else downloaded copies."""
    configured = Path(os.environ.get("SHARED_SCHEMAS_DIR", "../shared/schemas"))
    shared = configured if configured.is_absolute() else (repo_root / configured).resolve()
    dirs = [crds_dir(repo_root)]
    for folder, files, url in CRD_SOURCES:
        if (shared / folder).is_dir():
            dirs.append(shared / folder)
            continue
        cache = repo_root / ".tools" / "crds" / folder
        cache.mkdir(parents=True, exist_ok=True)
        for name in files:
            target = cache / name
            if not target.exists():
                print(f"{shared / folder} not found: downloading {url + name}", file=sys.stderr)
                with urllib.request.urlopen(url + name, timeout=60) as response:  # noqa: S310 (fixed https URL)
                    data = response.read()
                partial = target.with_suffix(".part")
                partial.write_bytes(data)
                partial.replace(target)
        dirs.append(cache)
    return dirs


def load_all_crd_schemas(repo_root: Path = REPO_ROOT) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Strict schemas of every CRD version the manifests may use."""
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for directory in schema_dirs(repo_root):
        schemas.update(load_crd_schemas(directory))
    return schemas


def load_crd_schemas(directory: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Maps (group, version, kind) to the strict JSON schema of each CRD version."""
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in load_documents(path.read_text()):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                key = (spec["group"], version["name"], spec["names"]["kind"])
                schemas[key] = strict_schema(schema)
    if not schemas:
        raise RuntimeError(f"no CustomResourceDefinition found in {directory}")
    return schemas


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rejects unknown fields, as the API server's strict field validation does.

    A structural CRD schema lists every field; the API server prunes or (with
    strict field validation) rejects the others. JSON Schema allows them unless
    `additionalProperties: false` says otherwise.
    """
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    # metadata is `type: object` only; kubernetes-validate style checks happen elsewhere.
    return schema


def load_spin_manifest(path: Path) -> dict[str, Any]:
    """Reads spin.toml."""
    with path.open("rb") as handle:
        return tomllib.load(handle)


# --- helpers -------------------------------------------------------------------


def ref(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def dig(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def workloads(docs: list[dict[str, Any]]) -> list[Workload]:
    """Every SpinApp and pod-creating object, as the pods they will create."""
    result = []
    for doc in docs:
        kind = doc.get("kind")
        meta = doc.get("metadata", {})
        name, namespace = meta.get("name", "?"), meta.get("namespace", "default")
        if kind == "SpinApp":
            spec = doc.get("spec", {})
            labels = dict(spec.get("podLabels") or {})
            labels[SPINAPP_NAME_LABEL] = name
            labels[f"core.spinkube.dev/app.{name}.status"] = "ready"
            container = {
                "name": name,
                "image": spec.get("image"),
                "resources": spec.get("resources"),
                "env": [
                    {"name": v.get("name"), "valueFrom": v.get("valueFrom")}
                    for v in spec.get("variables") or []
                    if v.get("valueFrom")
                ],
            }
            result.append(
                Workload(
                    ref=ref(doc),
                    kind=kind,
                    name=name,
                    namespace=namespace,
                    labels=labels,
                    service_account=spec.get("serviceAccountName"),
                    pod_automount=None,
                    containers=[container],
                    volumes=spec.get("volumes") or [],
                    spinapp=doc,
                    doc=doc,
                )
            )
        elif kind in POD_TEMPLATE_PATHS or kind == "Pod":
            template = doc if kind == "Pod" else dig(doc, *POD_TEMPLATE_PATHS[kind])
            template = template or {}
            pod_spec = template.get("spec") or {}
            result.append(
                Workload(
                    ref=ref(doc),
                    kind=kind,
                    name=name,
                    namespace=namespace,
                    labels=dict(dig(template, "metadata", "labels") or {}),
                    service_account=pod_spec.get("serviceAccountName"),
                    pod_automount=pod_spec.get("automountServiceAccountToken"),
                    containers=list(pod_spec.get("initContainers") or [])
                    + list(pod_spec.get("containers") or []),
                    volumes=pod_spec.get("volumes") or [],
                    pod_spec=pod_spec,
                    doc=doc,
                )
            )
    return result


def objects_of(docs: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d
        for d in docs
        if d.get("kind") == kind
    }


# --- schema checks -------------------------------------------------------------


def check_schemas(
    source: str,
    docs: list[dict[str, Any]],
    crd_schemas: dict[tuple[str, str, str], dict[str, Any]],
    kubernetes_version: str,
) -> list[Finding]:
    """Built-in kinds against Kubernetes' schemas, custom resources against their CRDs."""
    findings = []
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        group = group_of(api_version)
        version = api_version.split("/")[-1]
        if not dig(doc, "metadata", "name"):
            findings.append(Finding(source, ref(doc), "metadata.name is missing"))
        crd_schema = crd_schemas.get((group, version, kind))
        if crd_schema is not None:
            validator = jsonschema.Draft7Validator(crd_schema)
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in error.path) or "(root)"
                findings.append(
                    Finding(source, ref(doc), f"does not match the {kind} CRD at {where}: {error.message}")
                )
            continue
        if (group, kind) in CHECKED_BY_PROJECT_RULES:
            continue
        try:
            kubernetes_validate.validate(doc, kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            findings.append(
                Finding(source, ref(doc), f"no schema for {api_version} {kind}: unknown kind or missing CRD")
            )
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path) or "(root)"
            findings.append(Finding(source, ref(doc), f"invalid {kind} at {where}: {error.message}"))
    return findings


# --- project rules -------------------------------------------------------------


TEMPLATE_VARIABLE = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


def spin_components(spin: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return spin.get("component") or {}


def http_routes(spin: dict[str, Any]) -> dict[str, list[str]]:
    routes: dict[str, list[str]] = {}
    for trigger in (spin.get("trigger") or {}).get("http") or []:
        routes.setdefault(trigger["component"], []).append(trigger["route"])
    return routes


def redis_components(spin: dict[str, Any]) -> set[str]:
    return {t["component"] for t in (spin.get("trigger") or {}).get("redis") or []}


def route_matches(route: str, path: str) -> bool:
    if route.endswith("/..."):
        prefix = route[: -len("/...")]
        return path == prefix or path.startswith(prefix + "/") or prefix == ""
    return path == route


def variables_used(spin: dict[str, Any], components: Iterable[str]) -> set[str]:
    """Application variables the given components (and their triggers) refer to."""
    used: set[str] = set()
    all_components = spin_components(spin)
    for name in components:
        component = all_components.get(name) or {}
        texts = list((component.get("variables") or {}).values())
        texts += list(component.get("allowed_outbound_hosts") or [])
        for text in texts:
            used.update(TEMPLATE_VARIABLE.findall(str(text)))
    if redis_components(spin) & set(components):
        address = dig(spin, "application", "trigger", "redis", "address") or ""
        used.update(TEMPLATE_VARIABLE.findall(address))
    return used


def check_spin_variables(source: str, docs: list[dict[str, Any]], spin: dict[str, Any]) -> list[Finding]:
    """SpinApp components and variables against spin.toml."""
    findings = []
    declared = spin.get("variables") or {}
    components = spin_components(spin)
    required = sorted(
        name for name, spec in declared.items() if spec.get("required") and "default" not in spec
    )
    for doc in docs:
        if doc.get("kind") != "SpinApp":
            continue
        spec = doc.get("spec", {})
        selected = spec.get("components") or list(components)
        for component in selected:
            if component not in components:
                findings.append(
                    Finding(source, ref(doc), f"component `{component}` is not in spin.toml "
                            f"(components: {', '.join(sorted(components))})")
                )
        seen: dict[str, dict[str, Any]] = {}
        for variable in spec.get("variables") or []:
            name = variable.get("name", "")
            if name in seen:
                findings.append(Finding(source, ref(doc), f"variable `{name}` is set twice"))
            seen[name] = variable
            if name not in declared:
                findings.append(
                    Finding(source, ref(doc), f"variable `{name}` is not declared in spin.toml [variables]")
                )
            if ("value" in variable) == ("valueFrom" in variable):
                findings.append(
                    Finding(source, ref(doc), f"variable `{name}` needs exactly one of value and valueFrom")
                )
        for name in required:
            if name not in seen:
                findings.append(
                    Finding(source, ref(doc), f"required Spin variable `{name}` (no default in spin.toml) "
                            "is not set: Spin refuses to start an app with an unresolved required "
                            "variable, even one only other components use")
                )
        used = variables_used(spin, selected)
        for name, variable in seen.items():
            if declared.get(name, {}).get("secret") and name in used:
                if not dig(variable, "valueFrom", "secretKeyRef"):
                    findings.append(
                        Finding(source, ref(doc), f"secret Spin variable `{name}` must come from a "
                                "secretKeyRef (it is used by the deployed components)")
                    )
    return findings


def synced_secrets(docs: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """(namespace, Secret name) -> (SecretProviderClass name, keys it syncs)."""
    result = {}
    for (namespace, name), spc in objects_of(docs, "SecretProviderClass").items():
        for secret_object in dig(spc, "spec", "secretObjects") or []:
            keys = {item.get("key") for item in secret_object.get("data") or []}
            result[(namespace, secret_object.get("secretName"))] = (name, keys)
    return result


def csi_classes(workload: Workload) -> set[str]:
    return {
        dig(volume, "csi", "volumeAttributes", "secretProviderClass")
        for volume in workload.volumes
        if dig(volume, "csi", "driver") == "secrets-store.csi.k8s.io"
    }


def check_secret_provider_classes(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """SecretProviderClass structure, identity and use."""
    findings = []
    loads = workloads(docs)
    service_accounts = objects_of(docs, "ServiceAccount")
    for (namespace, name), spc in objects_of(docs, "SecretProviderClass").items():
        obj = ref(spc)
        spec = spc.get("spec") or {}
        params = spec.get("parameters") or {}
        if spec.get("provider") != "azure":
            findings.append(Finding(source, obj, "spec.provider must be `azure`"))
        for key in ("keyvaultName", "tenantId", "clientID"):
            if not params.get(key):
                findings.append(Finding(source, obj, f"spec.parameters.{key} is missing"))
        if params.get("usePodIdentity", "false") != "false":
            findings.append(Finding(source, obj, "usePodIdentity must be \"false\" (workload identity)"))
        try:
            listed = yaml.safe_load(params.get("objects") or "") or {}
            entries = [yaml.safe_load(entry) for entry in listed.get("array") or []]
        except yaml.YAMLError as error:
            findings.append(Finding(source, obj, f"spec.parameters.objects is not valid YAML: {error}"))
            entries = []
        fetched = set()
        for entry in entries:
            fetched.add(entry.get("objectAlias") or entry.get("objectName"))
            if entry.get("objectType") != "secret":
                findings.append(Finding(source, obj, f"object `{entry.get('objectName')}` must have objectType secret"))
        for secret_object in spec.get("secretObjects") or []:
            for item in secret_object.get("data") or []:
                if item.get("objectName") not in fetched:
                    findings.append(
                        Finding(source, obj, f"secretObjects syncs `{item.get('objectName')}` into "
                                f"{secret_object.get('secretName')}/{item.get('key')}, but it is not in "
                                "spec.parameters.objects")
                    )
        mounting = [w for w in loads if w.namespace == namespace and name in csi_classes(w)]
        if not mounting:
            findings.append(
                Finding(source, obj, "no workload mounts it, so the CSI driver never syncs its Secret")
            )
        for workload in mounting:
            account_name = workload.service_account or "default"
            account = service_accounts.get((namespace, account_name))
            client_id = dig(account, "metadata", "annotations", "azure.workload.identity/client-id")
            if client_id != params.get("clientID"):
                findings.append(
                    Finding(source, obj, f"clientID {params.get('clientID')} differs from the "
                            f"azure.workload.identity/client-id ({client_id}) of ServiceAccount "
                            f"{account_name}, which {workload.ref} mounts it with")
                )
    for workload in loads:
        for spc_name in csi_classes(workload):
            if (workload.namespace, spc_name) not in objects_of(docs, "SecretProviderClass"):
                findings.append(
                    Finding(source, workload.ref, f"mounts SecretProviderClass `{spc_name}`, which does not exist")
                )
    return findings


def secret_references(workload: Workload) -> list[tuple[str, str | None, str]]:
    """(Secret name, key or None for the whole Secret, where) for every reference."""
    refs = []
    for container in workload.containers:
        for env in container.get("env") or []:
            key_ref = dig(env, "valueFrom", "secretKeyRef")
            if key_ref:
                refs.append((key_ref.get("name"), key_ref.get("key"), f"`{env.get('name')}`"))
        for env_from in container.get("envFrom") or []:
            if env_from.get("secretRef"):
                refs.append((env_from["secretRef"].get("name"), None, "envFrom"))
    for volume in workload.volumes:
        secret = volume.get("secret")
        if secret:
            items = secret.get("items") or []
            if not items:
                refs.append((secret.get("secretName"), None, f"volume `{volume.get('name')}`"))
            for item in items:
                refs.append((secret.get("secretName"), item.get("key"), f"volume `{volume.get('name')}`"))
    return refs


def check_secret_refs(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """Every Secret reference points at a key some SecretProviderClass syncs."""
    findings = []
    synced = synced_secrets(docs)
    plain = {(ns, name): set((d.get("data") or {}) | (d.get("stringData") or {}))
             for (ns, name), d in objects_of(docs, "Secret").items()}
    for workload in workloads(docs):
        for secret, key, where in secret_references(workload):
            entry = synced.get((workload.namespace, secret))
            keys = entry[1] if entry else plain.get((workload.namespace, secret))
            if keys is None:
                findings.append(
                    Finding(source, workload.ref, f"{where} reads Secret `{secret}`, which no "
                            "SecretProviderClass syncs (secretObjects) and the build does not contain")
                )
            elif key is not None and key not in keys:
                findings.append(
                    Finding(source, workload.ref, f"{where} reads key `{key}` of Secret `{secret}`, but "
                            f"the SecretProviderClass only syncs: {', '.join(sorted(keys))}")
                )
    return findings


def check_config_refs(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """Every configMapKeyRef points at an existing key."""
    findings = []
    config_maps = objects_of(docs, "ConfigMap")
    for workload in workloads(docs):
        for container in workload.containers:
            for env in container.get("env") or []:
                key_ref = dig(env, "valueFrom", "configMapKeyRef")
                if not key_ref:
                    continue
                config_map = config_maps.get((workload.namespace, key_ref.get("name")))
                if config_map is None:
                    findings.append(
                        Finding(source, workload.ref, f"`{env.get('name')}` reads ConfigMap "
                                f"`{key_ref.get('name')}`, which is not in the build")
                    )
                elif key_ref.get("key") not in (config_map.get("data") or {}):
                    findings.append(
                        Finding(source, workload.ref, f"`{env.get('name')}` reads key `{key_ref.get('key')}` "
                                f"missing from ConfigMap `{key_ref.get('name')}`")
                    )
    return findings




def image_tag(image: str) -> str | None:
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check_workloads(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """Pinned images, resources and a dedicated ServiceAccount everywhere."""
    findings = []
    service_accounts = objects_of(docs, "ServiceAccount")
    spinapp_images = set()
    for workload in workloads(docs):
        for container in workload.containers:
            image = container.get("image") or ""
            tag = image_tag(image)
            if "@sha256:" not in image and (tag is None or tag == "latest"):
                findings.append(
                    Finding(source, workload.ref, f"image `{image}` is not pinned (needs a tag other "
                            "than latest, or a digest)")
                )
            resources = container.get("resources") or {}
            missing = [
                f"{section}.{resource}"
                for section in ("requests", "limits")
                for resource in ("cpu", "memory")
                if not dig(resources, section, resource)
            ]
            if missing:
                findings.append(
                    Finding(source, workload.ref, f"container `{container.get('name')}` has no "
                            f"resources {', '.join(missing)}")
                )
            if workload.kind == "SpinApp":
                spinapp_images.add(image)
        account = workload.service_account
        if not account or account == "default":
            findings.append(Finding(source, workload.ref, "has no dedicated serviceAccountName"))
            continue
        sa = service_accounts.get((workload.namespace, account))
        if sa is None:
            findings.append(Finding(source, workload.ref, f"ServiceAccount `{account}` is not in the build"))
        elif sa.get("automountServiceAccountToken") is not False and workload.pod_automount is not False:
            findings.append(
                Finding(source, workload.ref, f"ServiceAccount `{account}` mounts an API token: set "
                        "automountServiceAccountToken: false")
            )
    if len(spinapp_images) > 1:
        findings.append(
            Finding(source, "SpinApp/*", "the SpinApps run different images "
                    f"({', '.join(sorted(spinapp_images))}); they must share the one OCI artifact")
        )
    return findings


def check_spinapps(source: str, docs: list[dict[str, Any]], spin: dict[str, Any]) -> list[Finding]:
    """Executors exist; probes exist exactly where a component answers HTTP, on routed paths."""
    findings = []
    executors = objects_of(docs, "SpinAppExecutor")
    routes = http_routes(spin)
    for doc in docs:
        if doc.get("kind") != "SpinApp":
            continue
        spec = doc.get("spec", {})
        namespace = doc["metadata"].get("namespace", "default")
        if (namespace, spec.get("executor")) not in executors:
            findings.append(
                Finding(source, ref(doc), f"executor `{spec.get('executor')}` is not a SpinAppExecutor "
                        f"in namespace {namespace} (spin-operator only looks there)")
            )
        selected = spec.get("components") or list(spin_components(spin))
        served = [route for component in selected for route in routes.get(component, [])]
        for probe in ("liveness", "readiness"):
            path = dig(spec, "checks", probe, "httpGet", "path")
            if not served:
                findings.append(
                    Finding(source, ref(doc), "none of its components has an HTTP trigger, so it cannot "
                            "be probed: deploy a health component with it")
                )
                break
            if not path:
                findings.append(Finding(source, ref(doc), f"has no {probe} probe (spec.checks.{probe})"))
            elif not any(route_matches(route, path) for route in served):
                findings.append(
                    Finding(source, ref(doc), f"{probe} probe path {path} is not routed to any of its "
                            f"components (routes: {', '.join(served)})")
                )
    return findings


@dataclass(frozen=True)
class PlatformPod:
    """A pod that a controller creates for an object of the build (not in the manifests)."""

    name: str
    namespace: str
    labels: dict[str, str] = field(hash=False, compare=False)


def platform_pods(docs: list[dict[str, Any]]) -> list[PlatformPod]:
    """NGINX of every Gateway, and cert-manager's solver pods where a Gateway gets an ACME certificate."""
    pods = []
    for doc in docs:
        if doc.get("kind") != "Gateway":
            continue
        name = doc["metadata"]["name"]
        namespace = doc["metadata"].get("namespace", "default")
        pods.append(PlatformPod(f"NGINX of Gateway {namespace}/{name}", namespace, {
            GATEWAY_NAME_LABEL: name,
            "app.kubernetes.io/name": f"{name}-{dig(doc, 'spec', 'gatewayClassName')}",
        }))
        if "cert-manager.io/cluster-issuer" in (dig(doc, "metadata", "annotations") or {}):
            pods.append(PlatformPod("ACME HTTP-01 solver", namespace, {ACME_SOLVER_LABEL: "true"}))
    return pods


def check_selectors(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """NetworkPolicy and PDB selectors match the labels the pods will have."""
    findings = []
    loads: list[Workload | PlatformPod] = [*workloads(docs), *platform_pods(docs)]
    namespace_names = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
    for doc in docs:
        kind = doc.get("kind")
        namespace = dig(doc, "metadata", "namespace") or "default"
        local = [w for w in loads if w.namespace == namespace]
        if kind == "PodDisruptionBudget":
            selector = dig(doc, "spec", "selector")
            matched = [w for w in local if isinstance(w, Workload) and selector_matches(selector, w.labels)]
            if not matched:
                findings.append(Finding(source, ref(doc), f"selector {selector} matches no pod"))
            elif len(matched) > 1:
                findings.append(
                    Finding(source, ref(doc), "selector matches pods of several workloads: "
                            + ", ".join(w.ref for w in matched))
                )
        if kind != "NetworkPolicy":
            continue
        spec = doc.get("spec") or {}
        selector = spec.get("podSelector")
        if selector and (selector.get("matchLabels") or selector.get("matchExpressions")):
            if not any(selector_matches(selector, w.labels) for w in local):
                findings.append(Finding(source, ref(doc), f"podSelector {selector} matches no pod"))
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                for peer in rule.get(peers_key) or []:
                    if "ipBlock" in peer:
                        continue
                    pod_selector = peer.get("podSelector")
                    ns_selector = peer.get("namespaceSelector")
                    if ns_selector is None:
                        if pod_selector and not any(selector_matches(pod_selector, w.labels) for w in local):
                            findings.append(
                                Finding(source, ref(doc), f"{direction} peer podSelector {pod_selector} "
                                        "matches no pod in the namespace")
                            )
                        continue
                    target_ns = (ns_selector.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                    if target_ns is None:
                        findings.append(
                            Finding(source, ref(doc), f"{direction} peer namespaceSelector {ns_selector} must "
                                    "name one namespace (kubernetes.io/metadata.name)")
                        )
                        continue
                    if target_ns in namespace_names or target_ns == namespace:
                        candidates = [w.labels for w in loads if w.namespace == target_ns]
                    else:
                        candidates = [labels for ns, labels in EXTERNAL_PODS.values() if ns == target_ns]
                        if not candidates:
                            findings.append(
                                Finding(source, ref(doc), f"{direction} peer namespace `{target_ns}` is "
                                        "neither in the build nor a known platform namespace")
                            )
                            continue
                    if pod_selector is not None and not any(selector_matches(pod_selector, l) for l in candidates):
                        findings.append(
                            Finding(source, ref(doc), f"{direction} peer podSelector {pod_selector} matches no "
                                    f"known pod in namespace {target_ns}")
                        )
    return findings


@dataclass(frozen=True)
class Endpoint:
    """A pod as seen by NetworkPolicies."""

    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def endpoint(name: str, namespace: str, labels: dict[str, str]) -> Endpoint:
    return Endpoint(name, namespace, tuple(sorted(labels.items())))


def peer_matches(peer: dict[str, Any], policy_ns: str, other: Endpoint) -> bool:
    ns_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    if "ipBlock" in peer:
        return False
    if ns_selector is None:
        if other.namespace != policy_ns:
            return False
    elif not selector_matches(ns_selector, {"kubernetes.io/metadata.name": other.namespace}):
        return False
    return pod_selector is None or selector_matches(pod_selector, other.label_map) or pod_selector == {}


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol and (p.get("port") is None or p.get("port") == port)
        for p in ports
    )


def selects(policy: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    """Whether `policy` is in `namespace` and its podSelector selects a pod with `labels`."""
    selector = dig(policy, "spec", "podSelector")
    return dig(policy, "metadata", "namespace") == namespace and (
        selector == {} or selector_matches(selector, labels)
    )


def policy_allows(
    policies: list[dict[str, Any]], subject: Endpoint, other: Endpoint, direction: str, port: int, protocol: str
) -> bool:
    """Whether the policies let `subject` receive from (ingress) or send to (egress) `other`."""
    policy_type = "Ingress" if direction == "ingress" else "Egress"
    peers_key = "from" if direction == "ingress" else "to"
    selecting = [
        p for p in policies
        if selects(p, subject.namespace, subject.label_map)
        and policy_type in (dig(p, "spec", "policyTypes") or ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in dig(policy, "spec", direction) or []:
            peers = rule.get(peers_key)
            if not port_matches(rule.get("ports"), port, protocol):
                continue
            if not peers or any(peer_matches(peer, subject.namespace, other) for peer in peers):
                return True
    return False


SERVICE_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?(/\S*)?")


def check_traffic(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """The NetworkPolicies allow the flows the app needs, and deny by default."""
    findings = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    loads = workloads(docs)
    extra = platform_pods(docs)
    namespaces = {w.namespace for w in loads} | {p.namespace for p in extra}
    for namespace in sorted(namespaces):
        if not any(
            dig(p, "metadata", "namespace") == namespace
            and dig(p, "spec", "podSelector") == {}
            and {"Ingress", "Egress"} <= set(dig(p, "spec", "policyTypes") or [])
            for p in policies
        ):
            findings.append(
                Finding(source, f"Namespace/{namespace}", "no default-deny NetworkPolicy (podSelector {} "
                        "with policyTypes Ingress and Egress)")
            )
    by_name = {(w.namespace, w.name): w for w in loads}
    dns_ns, dns_labels = EXTERNAL_PODS["dns"]
    dns = endpoint("kube-dns", dns_ns, dns_labels)
    control_ns, control_labels = EXTERNAL_PODS["gateway-control-plane"]
    control_plane = endpoint("NGINX Gateway Fabric", control_ns, control_labels)

    def pod(w: Workload) -> Endpoint:
        return endpoint(w.name, w.namespace, w.labels)

    for workload in loads:
        if not policy_allows(policies, pod(workload), dns, "egress", 53, "UDP"):
            findings.append(Finding(source, workload.ref, "NetworkPolicies block its DNS lookups (kube-dns, UDP 53)"))
    for gateway_pod in (p for p in extra if GATEWAY_NAME_LABEL in p.labels):
        subject = endpoint(gateway_pod.name, gateway_pod.namespace, gateway_pod.labels)
        obj = f"Gateway/{gateway_pod.labels[GATEWAY_NAME_LABEL]}"
        if not policy_allows(policies, subject, dns, "egress", 53, "UDP"):
            findings.append(Finding(source, obj, "NetworkPolicies block its NGINX's DNS lookups (kube-dns, UDP 53)"))
        if not policy_allows(policies, subject, control_plane, "egress", 8443, "TCP"):
            findings.append(
                Finding(source, obj, "NetworkPolicies block its NGINX agent from the NGINX Gateway Fabric control "
                        "plane (namespace nginx-gateway, TCP 8443): it would never get its configuration")
            )
    for workload in loads:
        texts = []
        for container in workload.containers:
            texts += [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]
        for service_name, namespace, port, _ in SERVICE_URL.findall(" ".join(texts)):
            target = by_name.get((namespace, service_name))
            if target is None:
                findings.append(
                    Finding(source, workload.ref, f"calls Service {service_name}.{namespace}, which no SpinApp "
                            "or workload in the build provides")
                )
                continue
            number = int(port) if port else 80
            if not (
                policy_allows(policies, pod(workload), pod(target), "egress", number, "TCP")
                and policy_allows(policies, pod(target), pod(workload), "ingress", number, "TCP")
            ):
                findings.append(
                    Finding(source, workload.ref, f"NetworkPolicies block its calls to {target.ref} on port {number}")
                )
    return findings


# --- managed Redis: the apps' egress port ------------------------------------------


def check_managed_redis_egress(source: str, env: str, docs: list[dict[str, Any]], spin: dict[str, Any],
                               outputs_env: Path) -> list[Finding]:
    """Without the in-cluster Redis, the SpinApps that use Redis may send to its
    private endpoint (an ipBlock) on the port Terraform outputs (redis_port)."""
    if any(redis_services(docs, r) for r in redis_workloads(docs)):
        return []
    port = read_env_file(outputs_env).get("redis_port", "")
    if not port.isdigit():
        return [Finding(source, f"Overlay/{env}", f"{outputs_env.name}: redis_port `{port}` is not a port number")]
    findings = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    namespaces = {w.namespace for w in workloads(docs) if w.kind == "SpinApp"}
    for client in (c for ns in sorted(namespaces) for c in redis_clients(docs, spin, ns)):
        allowed = False
        for policy in policies:
            if not selects(policy, client.namespace, client.labels):
                continue
            for rule in dig(policy, "spec", "egress") or []:
                if any("ipBlock" in peer for peer in rule.get("to") or []) and port_matches(
                    rule.get("ports"), int(port), "TCP"
                ):
                    allowed = True
        if not allowed:
            findings.append(
                Finding(source, client.ref, f"NetworkPolicies block its Redis traffic: no egress to the private "
                        f"endpoint subnet on TCP {port}, the redis_port Terraform outputs")
            )
    return findings


# --- the edge: Gateways, routes, TLS --------------------------------------------


def load_platform_issuers(repo_root: Path = REPO_ROOT) -> dict[str, dict[str, Any]]:
    """The ClusterIssuers kubernetes/platform installs, by name."""
    path = repo_root / PLATFORM_ISSUERS
    docs = load_documents(path.read_text()) if path.exists() else []
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterIssuer"}


def is_internal(gateway: dict[str, Any]) -> bool:
    annotations = dig(gateway, "spec", "infrastructure", "annotations") or {}
    return str(annotations.get(INTERNAL_LB_ANNOTATION, "")).lower() == "true"


def path_covers(match: dict[str, Any] | None, path: str) -> bool:
    """Whether an HTTPRoute match (Gateway API path semantics) matches a request path."""
    spec = (match or {}).get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = spec.get("type", "PathPrefix"), spec.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    try:
        return re.fullmatch(value, path) is not None
    except re.error:
        return True


def rule_covers(rule: dict[str, Any], path: str) -> bool:
    matches = rule.get("matches") or [None]
    return any(path_covers(m, path) for m in matches)


def listener_admits(gateway: dict[str, Any], listener: dict[str, Any], route_namespace: str) -> bool:
    namespaces = dig(listener, "allowedRoutes", "namespaces") or {}
    origin = namespaces.get("from", "Same")
    if origin == "All":
        return True
    if origin == "Selector":
        return selector_matches(namespaces.get("selector") or {}, {"kubernetes.io/metadata.name": route_namespace})
    return route_namespace == dig(gateway, "metadata", "namespace")


def host_fits(listener_host: str | None, host: str) -> bool:
    if not listener_host:
        return True
    if listener_host.startswith("*."):
        return host.endswith(listener_host[1:])
    return listener_host == host


def gateway_pod(gateway: dict[str, Any]) -> Endpoint:
    name = gateway["metadata"]["name"]
    return endpoint(f"NGINX of Gateway {name}", gateway["metadata"].get("namespace", "default"), {
        GATEWAY_NAME_LABEL: name,
        "app.kubernetes.io/name": f"{name}-{dig(gateway, 'spec', 'gatewayClassName')}",
    })


def check_edge(
    source: str, docs: list[dict[str, Any]], issuers: dict[str, dict[str, Any]] | None = None
) -> list[Finding]:
    """Routes attach to real listeners and reach their backends; admin only on an
    internal Gateway; TLS from an issuer whose HTTP-01 solver can answer."""
    issuers = load_platform_issuers() if issuers is None else issuers
    findings = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    gateways = objects_of(docs, "Gateway")
    by_name = {(w.namespace, w.name): w for w in workloads(docs)}
    admin_on_internal = False
    for route in (d for d in docs if d.get("kind") == "HTTPRoute"):
        obj = ref(route)
        namespace = dig(route, "metadata", "namespace") or "default"
        spec = route.get("spec") or {}
        attached = []
        for parent in spec.get("parentRefs") or []:
            if parent.get("kind", "Gateway") != "Gateway":
                continue
            key = (parent.get("namespace", namespace), parent.get("name"))
            gateway = gateways.get(key)
            if gateway is None:
                findings.append(Finding(source, obj, f"parentRef Gateway {key[0]}/{key[1]} is not in the build"))
                continue
            listeners = dig(gateway, "spec", "listeners") or []
            section = parent.get("sectionName")
            chosen = [l for l in listeners if section is None or l.get("name") == section]
            if not chosen:
                findings.append(Finding(source, obj, f"Gateway {key[0]}/{key[1]} has no listener `{section}`"))
                continue
            for listener in chosen:
                if not listener_admits(gateway, listener, namespace):
                    findings.append(
                        Finding(source, obj, f"listener `{listener.get('name')}` of Gateway {key[0]}/{key[1]} "
                                f"does not admit routes from namespace {namespace} (allowedRoutes)")
                    )
                for host in spec.get("hostnames") or []:
                    if not host_fits(listener.get("hostname"), host):
                        findings.append(
                            Finding(source, obj, f"hostname {host} does not fit listener `{listener.get('name')}` "
                                    f"of Gateway {key[0]}/{key[1]} ({listener.get('hostname')})")
                        )
            attached.append(gateway)
        for rule in spec.get("rules") or []:
            # A rule that forwards (a redirect to HTTPS exposes nothing).
            forwards = bool(rule.get("backendRefs"))
            for path in ADMIN_PATHS:
                if not forwards or not rule_covers(rule, path):
                    continue
                for gateway in attached:
                    if is_internal(gateway):
                        admin_on_internal = True
                    else:
                        findings.append(
                            Finding(source, obj, f"routes {path} through Gateway {ref(gateway)}, which is not "
                                    f"internal ({INTERNAL_LB_ANNOTATION}): operator routes must only be on an "
                                    "internal Gateway")
                        )
                break
            for backend in rule.get("backendRefs") or []:
                if backend.get("kind", "Service") != "Service":
                    continue
                target = by_name.get((backend.get("namespace", namespace), backend.get("name")))
                if target is None or target.kind != "SpinApp":
                    findings.append(
                        Finding(source, obj, f"backend Service `{backend.get('name')}` is not a SpinApp's "
                                "Service in the build")
                    )
                    continue
                if backend.get("port") != SPINAPP_SERVICE_PORT:
                    findings.append(
                        Finding(source, obj, f"backend port must be {SPINAPP_SERVICE_PORT}, the port of the "
                                "Service spin-operator creates")
                    )
                target_pod = endpoint(target.name, target.namespace, target.labels)
                for gateway in attached:
                    nginx = gateway_pod(gateway)
                    if not (
                        policy_allows(policies, nginx, target_pod, "egress", SPINAPP_SERVICE_PORT, "TCP")
                        and policy_allows(policies, target_pod, nginx, "ingress", SPINAPP_SERVICE_PORT, "TCP")
                    ):
                        findings.append(
                            Finding(source, obj, f"NetworkPolicies block the NGINX of Gateway "
                                    f"{ref(gateway)} from reaching {target.ref} on port {SPINAPP_SERVICE_PORT}")
                        )
    if any(is_internal(g) for g in gateways.values()) and not admin_on_internal:
        findings.append(Finding(source, "HTTPRoute/*", "no route brings operators to /api/v1/admin on the "
                                "internal Gateway"))
    for (namespace, name), gateway in gateways.items():
        findings += check_gateway_tls(source, docs, gateway, issuers, policies)
        if not is_internal(gateway):
            annotations = dig(gateway, "spec", "infrastructure", "annotations") or {}
            for key in (PIP_NAME_ANNOTATION, PIP_GROUP_ANNOTATION):
                if not annotations.get(key):
                    findings.append(
                        Finding(source, ref(gateway), f"public Gateway without spec.infrastructure.annotations "
                                f"{key}: its load balancer would get a new address on every re-creation, not "
                                "the static public IP the NSG and DNS point at")
                    )
    return findings


# NGINX's own client_max_body_size when nothing sets it, and NGINX Gateway
# Fabric sets it only from a ClientSettingsPolicy (v2.6.7:
# internal/controller/nginx/config/policies/clientsettings/generator.go).
NGINX_DEFAULT_BODY_SIZE = "1m"
SUBMIT_PATH = "/api/v1/jobs"


def nginx_size(text: str) -> int | None:
    """Bytes of an NGINX size (`9m`, `512k`, `1g`, `1048576`); None if not one."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]


def check_body_limits(source: str, docs: list[dict[str, Any]], spin: dict[str, Any]) -> list[Finding]:
    """NGINX passes every body the api would accept: a route that forwards
    `POST /api/v1/jobs` has a ClientSettingsPolicy (on it or its Gateway) whose
    body.maxSize is at least each backend SpinApp's `max_body_bytes`, and
    finite (NGINX buffers a body before it proxies it). Without one NGINX
    answers 413 itself above 1 MiB, in HTML, for bodies the api would take."""
    findings = []
    by_name = {(w.namespace, w.name): w for w in workloads(docs)}
    policies = {
        ((dig(p, "metadata", "namespace") or "default"), dig(p, "spec", "targetRef", "kind"),
         dig(p, "spec", "targetRef", "name")): p
        for p in docs if p.get("kind") == "ClientSettingsPolicy"
    }
    default_limit = dig(spin, "variables", "max_body_bytes", "default")
    for route in (d for d in docs if d.get("kind") == "HTTPRoute"):
        namespace = dig(route, "metadata", "namespace") or "default"
        rules = [r for r in dig(route, "spec", "rules") or []
                 if r.get("backendRefs") and rule_covers(r, SUBMIT_PATH)]
        if not rules:
            continue
        # The route's own policy, else one on a Gateway it attaches to.
        keys = [(namespace, "HTTPRoute", route["metadata"]["name"])]
        keys += [(p.get("namespace", namespace), "Gateway", p.get("name"))
                 for p in dig(route, "spec", "parentRefs") or [] if p.get("kind", "Gateway") == "Gateway"]
        policy = next((policies[k] for k in keys if k in policies), None)
        size_text = dig(policy, "spec", "body", "maxSize") if policy else None
        shown = size_text or NGINX_DEFAULT_BODY_SIZE
        size = nginx_size(shown)
        where = f"ClientSettingsPolicy {policy['metadata']['name']}" if size_text else "NGINX's default"
        for backend in (b for r in rules for b in r["backendRefs"]):
            target = by_name.get((backend.get("namespace", namespace), backend.get("name")))
            if target is None or target.kind != "SpinApp":
                continue
            declared = {v.get("name") for v in dig(target.spinapp, "spec", "variables") or []}
            limit_text = (spinapp_variable(docs, target, "max_body_bytes") if "max_body_bytes" in declared
                          else default_limit)
            if limit_text is None or not str(limit_text).strip().isdigit():
                continue
            limit = int(limit_text)
            if size == 0:
                findings.append(Finding(source, ref(route), f"{where} sets body.maxSize 0: NGINX would buffer "
                                        f"bodies of any size before the api refuses them above {limit} bytes"))
            elif size is None or size < limit:
                findings.append(Finding(source, ref(route), f"NGINX's client_max_body_size is {shown} "
                                        f"({where}), below max_body_bytes {limit} of {target.ref}: NGINX "
                                        f"would answer 413 itself for {SUBMIT_PATH} bodies the api accepts"))
    return findings


def check_gateway_tls(
    source: str,
    docs: list[dict[str, Any]],
    gateway: dict[str, Any],
    issuers: dict[str, dict[str, Any]],
    policies: list[dict[str, Any]],
) -> list[Finding]:
    """Every HTTPS listener gets a certificate that cert-manager can issue."""
    findings = []
    obj = ref(gateway)
    namespace = dig(gateway, "metadata", "namespace") or "default"
    annotations = dig(gateway, "metadata", "annotations") or {}
    listeners = dig(gateway, "spec", "listeners") or []
    https = [l for l in listeners if l.get("protocol") == "HTTPS"]
    if not https:
        return findings
    for listener in https:
        if not dig(listener, "tls", "certificateRefs"):
            findings.append(Finding(source, obj, f"HTTPS listener `{listener.get('name')}` has no certificateRefs"))
        if not listener.get("hostname"):
            findings.append(
                Finding(source, obj, f"HTTPS listener `{listener.get('name')}` has no hostname: cert-manager "
                        "issues certificates only for listener hostnames")
            )
    cluster_issuer = annotations.get("cert-manager.io/cluster-issuer")
    issuer = annotations.get("cert-manager.io/issuer")
    if issuer:
        if (namespace, issuer) not in objects_of(docs, "Issuer"):
            findings.append(Finding(source, obj, f"cert-manager.io/issuer `{issuer}` is not an Issuer in {namespace}"))
        return findings
    if not cluster_issuer:
        findings.append(
            Finding(source, obj, "HTTPS listeners without cert-manager.io/cluster-issuer or cert-manager.io/issuer: "
                    "nothing issues their certificate")
        )
        return findings
    definition = issuers.get(cluster_issuer)
    if definition is None:
        findings.append(
            Finding(source, obj, f"cert-manager.io/cluster-issuer `{cluster_issuer}` is not a ClusterIssuer of "
                    f"{PLATFORM_ISSUERS} ({', '.join(sorted(issuers)) or 'none'})")
        )
        return findings
    solvers = dig(definition, "spec", "acme", "solvers")
    if solvers is None:
        return findings
    usable = False
    for solver in solvers:
        http01 = solver.get("http01") or {}
        if "ingress" in http01:
            findings.append(
                Finding(source, obj, f"ClusterIssuer {cluster_issuer} solves HTTP-01 with an Ingress; the edge is "
                        "the Gateway API (use http01.gatewayHTTPRoute)")
            )
        for parent in dig(http01, "gatewayHTTPRoute", "parentRefs") or []:
            if (parent.get("name"), parent.get("namespace")) != (gateway["metadata"]["name"], namespace):
                continue
            listener = next((l for l in listeners if l.get("name") == parent.get("sectionName")), None)
            if listener is None or listener.get("protocol") != "HTTP" or listener.get("port") != 80:
                findings.append(
                    Finding(source, obj, f"ClusterIssuer {cluster_issuer}: the solver's sectionName "
                            f"`{parent.get('sectionName')}` is not an HTTP listener on port 80 (HTTP-01 "
                            "is always plain HTTP on 80)")
                )
                continue
            if not listener_admits(gateway, listener, namespace):
                findings.append(
                    Finding(source, obj, f"listener `{listener.get('name')}` does not admit routes from "
                            f"{namespace}, where cert-manager creates the solver's HTTPRoute")
                )
                continue
            for https_listener in https:
                if not host_fits(listener.get("hostname"), https_listener.get("hostname") or ""):
                    findings.append(
                        Finding(source, obj, f"listener `{listener.get('name')}` does not serve "
                                f"{https_listener.get('hostname')}, so the challenge for it cannot be answered")
                    )
            usable = True
    if not usable:
        findings.append(
            Finding(source, obj, f"ClusterIssuer {cluster_issuer} has no HTTP-01 gatewayHTTPRoute solver on this "
                    "Gateway: the certificate would never issue")
        )
        return findings
    nginx = gateway_pod(gateway)
    solver = endpoint("ACME HTTP-01 solver", namespace, {ACME_SOLVER_LABEL: "true"})
    if not (
        policy_allows(policies, nginx, solver, "egress", ACME_SOLVER_PORT, "TCP")
        and policy_allows(policies, solver, nginx, "ingress", ACME_SOLVER_PORT, "TCP")
    ):
        findings.append(
            Finding(source, obj, f"NetworkPolicies block its NGINX from the ACME HTTP-01 solver pods "
                    f"({ACME_SOLVER_LABEL}) on port {ACME_SOLVER_PORT}: the certificate would never issue")
        )
    return findings


# --- autoscaling ------------------------------------------------------------------

KEDA_URL = re.compile(r"^https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?(/[^?]*)?")


def check_autoscaling(source: str, docs: list[dict[str, Any]], spin: dict[str, Any]) -> list[Finding]:
    """ScaledObjects target SpinApps that leave their replicas to KEDA, with sane
    bounds, and their metrics-api triggers can read what they ask for."""
    findings = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    spinapps = objects_of(docs, "SpinApp")
    loads = {(w.namespace, w.name): w for w in workloads(docs)}
    auths = objects_of(docs, "TriggerAuthentication")
    synced = synced_secrets(docs)
    routes = http_routes(spin)
    routed = {
        (dig(r, "metadata", "namespace") or "default", b.get("name"))
        for r in docs if r.get("kind") == "HTTPRoute"
        for rule in dig(r, "spec", "rules") or [] for b in rule.get("backendRefs") or []
    }
    keda_ns, keda_labels = EXTERNAL_PODS["keda-operator"]
    keda = endpoint("KEDA operator", keda_ns, keda_labels)
    scaled: dict[tuple[str, str], str] = {}
    for doc in (d for d in docs if d.get("kind") == "ScaledObject"):
        obj = ref(doc)
        namespace = dig(doc, "metadata", "namespace") or "default"
        spec = doc.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        key = (namespace, target.get("name"))
        app = spinapps.get(key)
        if target.get("kind", "Deployment") != "Deployment" or app is None:
            findings.append(
                Finding(source, obj, f"scaleTargetRef {target.get('kind', 'Deployment')}/{target.get('name')} is not "
                        "the Deployment of a SpinApp in the build")
            )
            continue
        if key in scaled:
            findings.append(Finding(source, obj, f"SpinApp/{key[1]} is already scaled by {scaled[key]}"))
        scaled[key] = obj
        if not dig(app, "spec", "enableAutoscaling"):
            findings.append(
                Finding(source, obj, f"SpinApp/{key[1]} does not set enableAutoscaling: spin-operator would reset "
                        "the replicas KEDA sets")
            )
        if "maxReplicaCount" not in spec:
            findings.append(Finding(source, obj, "no maxReplicaCount: the fan-out and the cost are unbounded"))
        if key in routed and int(spec.get("minReplicaCount", 0)) < 1:
            findings.append(
                Finding(source, obj, f"minReplicaCount {spec.get('minReplicaCount', 0)}: SpinApp/{key[1]} serves "
                        "HTTP routes and must not scale to zero")
            )
        for trigger in spec.get("triggers") or []:
            if trigger.get("type") != "metrics-api":
                continue
            metadata = trigger.get("metadata") or {}
            match = KEDA_URL.match(str(metadata.get("url", "")))
            source_app = loads.get((match.group(2), match.group(1))) if match else None
            if source_app is None or source_app.kind != "SpinApp":
                findings.append(
                    Finding(source, obj, f"metrics-api url {metadata.get('url')} is not the Service of a SpinApp "
                            "in the build")
                )
                continue
            path = match.group(4) or "/"
            served = [r for c in dig(source_app.spinapp, "spec", "components") or [] for r in routes.get(c, [])]
            if not any(route_matches(r, path) for r in served):
                findings.append(
                    Finding(source, obj, f"metrics-api path {path} is not routed to a component of "
                            f"{source_app.ref} (routes: {', '.join(served) or 'none'})")
                )
            if not metadata.get("valueLocation"):
                findings.append(Finding(source, obj, "metrics-api trigger without valueLocation"))
            port = int(match.group(3) or 80)
            target_pod = endpoint(source_app.name, source_app.namespace, source_app.labels)
            if not policy_allows(policies, target_pod, keda, "ingress", port, "TCP"):
                findings.append(
                    Finding(source, obj, f"NetworkPolicies block KEDA's operator ({keda_ns}, {keda_labels}) from "
                            f"{source_app.ref} on port {port}")
                )
            if metadata.get("authMode"):
                auth_name = dig(trigger, "authenticationRef", "name")
                auth = auths.get((namespace, auth_name))
                if auth is None:
                    findings.append(
                        Finding(source, obj, f"authMode {metadata['authMode']} but authenticationRef `{auth_name}` "
                                "is not a TriggerAuthentication in the build")
                    )
                    continue
                for secret_ref in dig(auth, "spec", "secretTargetRef") or []:
                    entry = synced.get((namespace, secret_ref.get("name")))
                    if entry is None or secret_ref.get("key") not in entry[1]:
                        findings.append(
                            Finding(source, ref(auth), f"reads key `{secret_ref.get('key')}` of Secret "
                                    f"`{secret_ref.get('name')}`, which no SecretProviderClass syncs")
                        )
    for key, app in spinapps.items():
        if dig(app, "spec", "enableAutoscaling"):
            if key not in scaled:
                findings.append(
                    Finding(source, ref(app), "enableAutoscaling without a ScaledObject: nothing sets its replicas")
                )
            if dig(app, "spec", "replicas"):
                findings.append(
                    Finding(source, ref(app), "sets replicas and enableAutoscaling: spin-operator's webhook "
                            "rejects that")
                )
    return findings


# --- apply order ----------------------------------------------------------------

# Namespaces the platform creates, where the app's objects may refer to pods.
PLATFORM_NAMESPACES = {"kube-system", "nginx-gateway", "cert-manager", "spin-operator", "runtime-class-manager"}


def apply_phases(docs: list[dict[str, Any]], repo_root: Path = REPO_ROOT) -> list[list[dict[str, Any]]]:
    """The phases scripts/deploy.sh applies built manifests in (`deploy.sh phases`)."""
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests.yaml"
        manifests.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        result = subprocess.run(
            [str(repo_root / "scripts" / "deploy.sh"), "phases", str(manifests), str(Path(tmp) / "phases")],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"scripts/deploy.sh phases failed: {result.stderr.strip()}")
        return [load_documents(Path(line).read_text()) for line in result.stdout.split()]


def check_apply_order(source: str, docs: list[dict[str, Any]], phases: list[list[dict[str, Any]]]) -> list[Finding]:
    """In deploy.sh's phases, namespaces come before what lives in them and
    executors before the SpinApps that name them (spin-operator's webhook)."""
    findings = []
    flattened = [d for phase in phases for d in phase]
    if sorted(map(ref, flattened)) != sorted(map(ref, docs)):
        findings.append(Finding(source, "Phases/*", "the phases do not hold exactly the built objects"))
    namespaces: set[str] = set()
    executors: set[tuple[str, str]] = set()
    for number, phase in enumerate(phases, start=1):
        for doc in phase:
            namespace = dig(doc, "metadata", "namespace")
            if namespace and namespace not in namespaces | PLATFORM_NAMESPACES:
                findings.append(
                    Finding(source, ref(doc), f"phase {number} applies it in namespace {namespace}, which no "
                            "earlier phase creates")
                )
            if doc.get("kind") == "SpinApp" and (namespace, dig(doc, "spec", "executor")) not in executors:
                findings.append(
                    Finding(source, ref(doc), f"phase {number} applies it before its executor "
                            f"`{dig(doc, 'spec', 'executor')}`: spin-operator's webhook would reject it")
                )
        namespaces |= {d["metadata"]["name"] for d in phase if d.get("kind") == "Namespace"}
        executors |= {(dig(d, "metadata", "namespace"), d["metadata"]["name"])
                      for d in phase if d.get("kind") == "SpinAppExecutor"}
    return findings


# --- the platform: Shim ---------------------------------------------------------


def check_shim(repo_root: Path = REPO_ROOT) -> tuple[list[Finding], list[str]]:
    """kubernetes/platform/shim-spin.yaml: per-platform artifacts with a checksum
    field, no ignored fields; the RuntimeClass the executor uses. Returns the
    findings and notes (a checksum still to be recorded)."""
    path = repo_root / PLATFORM_SHIM
    source = PLATFORM_SHIM
    findings: list[Finding] = []
    notes: list[str] = []
    shims = [d for d in load_documents(path.read_text()) if d.get("kind") == "Shim"] if path.exists() else []
    if len(shims) != 1:
        return [Finding(source, "Shim/*", "expected exactly one Shim")], notes
    shim = shims[0]
    obj = ref(shim)
    fetch = dig(shim, "spec", "fetchStrategy") or {}
    if "type" in fetch:
        findings.append(Finding(source, obj, "fetchStrategy.type is ignored by runtime-class-manager 0.2.0: drop it"))
    if "anonHttp" in fetch:
        findings.append(Finding(source, obj, "fetchStrategy.anonHttp has no checksum: use platforms[] with sha256"))
    platforms = fetch.get("platforms") or []
    if not platforms:
        findings.append(Finding(source, obj, "fetchStrategy.platforms is empty"))
    for platform in platforms:
        sha = platform.get("sha256")
        if sha is None:
            findings.append(Finding(source, obj, f"platform {platform.get('arch')}: no sha256"))
        elif sha == "":
            notes.append(f"{source}: sha256 of {platform.get('location')} not recorded yet: "
                         "kubernetes/platform/install.sh refuses to install until `install.sh --record-pins` ran")
        elif not re.fullmatch(r"[0-9a-f]{64}", sha):
            findings.append(Finding(source, obj, f"platform {platform.get('arch')}: sha256 is not 64 hex digits"))
        if not str(platform.get("location", "")).startswith("https://"):
            findings.append(Finding(source, obj, f"platform {platform.get('arch')}: location is not https"))
    executor = repo_root / "kubernetes" / "base" / "spin-app-executor.yaml"
    if executor.exists():
        wanted = dig(load_documents(executor.read_text())[0], "spec", "deploymentConfig", "runtimeClassName")
        if dig(shim, "spec", "runtimeClass", "name") != wanted:
            findings.append(
                Finding(source, obj, f"runtimeClass {dig(shim, 'spec', 'runtimeClass', 'name')} is not the "
                        f"SpinAppExecutor's runtimeClassName {wanted}")
            )
    return findings, notes


# --- the edge in Terraform: public IP and NSG ---------------------------------------

EDGE_OUTPUTS = ("edge_public_ip_address", "edge_public_ip_name", "edge_public_ip_resource_group", "edge_fqdn")
TF_BLOCK = re.compile(r'(?:resource\s+"(?P<type>[a-z_]+)"\s+"(?P<name>[a-z0-9_]+)"|(?P<nested>security_rule))\s*\{')
TF_ATTRIBUTE = re.compile(r'^\s*([a-z_]+)\s*=\s*(.+?)\s*$', re.MULTILINE)


def tf_blocks(text: str) -> list[tuple[str, str, str]]:
    """(type, name, body) of every resource and security_rule block (braces balanced)."""
    blocks = []
    for match in TF_BLOCK.finditer(text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        kind = "security_rule" if match.group("nested") else match.group("type")
        blocks.append((kind, match.group("name") or "", text[match.end():i - 1]))
    return blocks


def tf_attributes(body: str) -> dict[str, str]:
    return {k: v.strip().strip('"') for k, v in TF_ATTRIBUTE.findall(body)}


def tf_ports(attributes: dict[str, str]) -> set[int]:
    ports: set[int] = set()
    text = attributes.get("destination_port_range", "") + " " + attributes.get("destination_port_ranges", "")
    for low, high in re.findall(r'(\d+)(?:-(\d+))?', text):
        ports.update(range(int(low), int(high or low) + 1))
    if attributes.get("destination_port_range") == "*":
        ports.update((80, 443))
    return ports


def check_terraform_edge(source: str, env: str, docs: list[dict[str, Any]], terraform: Path,
                         outputs_env: Path) -> list[Finding]:
    """Terraform gives the edge a static public IP and lets TCP 80 and 443 from
    the internet reach it; the overlay's public Gateway takes that IP."""
    findings = []
    obj = f"Overlay/{env}"
    texts = {p: p.read_text() for p in sorted(terraform.rglob("*.tf")) if ".terraform" not in p.parts}
    blocks = [(p, *b) for p, t in texts.items() for b in tf_blocks(t)]
    public_ips = [(p, name) for p, kind, name, _ in blocks if kind == "azurerm_public_ip" and name != "nat"]
    if not public_ips:
        findings.append(Finding(source, obj, "terraform/ has no azurerm_public_ip for the edge (besides the NAT "
                                "gateway's): the public Gateway needs a static address"))
    root_outputs = (terraform / "outputs.tf").read_text() if (terraform / "outputs.tf").exists() else ""
    for name in EDGE_OUTPUTS:
        if not re.search(rf'output\s+"{name}"', root_outputs):
            findings.append(Finding(source, obj, f"terraform/outputs.tf has no output `{name}`"))
    allowed: set[int] = set()
    for _, kind, _, body in blocks:
        if kind not in ("security_rule", "azurerm_network_security_rule"):
            continue
        rule = tf_attributes(body)
        if (rule.get("access"), rule.get("direction")) != ("Allow", "Inbound") or rule.get("protocol") not in ("Tcp", "*"):
            continue
        if rule.get("source_address_prefix") != "Internet":
            continue
        destination = rule.get("destination_address_prefix", "") + rule.get("destination_address_prefixes", "")
        if "public_ip" not in destination and "edge" not in destination:
            continue
        allowed |= tf_ports(rule)
    for port in (80, 443):
        if port not in allowed:
            why = "the ACME HTTP-01 challenge and the HTTPS redirect" if port == 80 else "HTTPS"
            findings.append(
                Finding(source, obj, f"no NSG rule allows TCP {port} from Internet to the edge public IP "
                        f"(destination naming the edge's public IP): {why} would not reach the Gateway")
            )
    outputs = read_env_file(outputs_env)
    for name in EDGE_OUTPUTS:
        if not outputs.get(name):
            findings.append(Finding(source, obj, f"{outputs_env.name} has no `{name}`: refresh it with "
                                    "`scripts/deploy.sh outputs {env}`"))
    for gateway in objects_of(docs, "Gateway").values():
        if is_internal(gateway):
            continue
        annotations = dig(gateway, "spec", "infrastructure", "annotations") or {}
        for key, output in ((PIP_NAME_ANNOTATION, "edge_public_ip_name"),
                            (PIP_GROUP_ANNOTATION, "edge_public_ip_resource_group")):
            if outputs.get(output) and annotations.get(key) != outputs[output]:
                findings.append(
                    Finding(source, ref(gateway), f"{key} is {annotations.get(key)}, but Terraform's {output} is "
                            f"{outputs[output]}")
                )
    return findings


LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def check_pod_hardening(source: str, docs: list[dict[str, Any]]) -> list[Finding]:
    """Pods we define ourselves (not SpinApps) follow the hardening of aks-baseline.

    Non-root, RuntimeDefault seccomp, no privilege escalation, no capabilities,
    read-only root filesystem; long-running ones also have liveness and
    readiness probes. SpinApp pods cannot carry a securityContext (SpinApp
    0.6.1 has no field for it), see kubernetes/README.md.
    """
    findings = []
    for workload in workloads(docs):
        if workload.kind == "SpinApp":
            continue
        pod_context = workload.pod_spec.get("securityContext") or {}
        regular = list(workload.pod_spec.get("containers") or [])
        for container in workload.containers:
            name = container.get("name")
            context = container.get("securityContext") or {}
            problems = []
            if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
                problems.append("runAsNonRoot: true")
            seccomp = dig(context, "seccompProfile", "type") or dig(pod_context, "seccompProfile", "type")
            if seccomp != "RuntimeDefault":
                problems.append("seccompProfile RuntimeDefault")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation: false")
            if "ALL" not in (dig(context, "capabilities", "drop") or []):
                problems.append("capabilities.drop: [ALL]")
            if dig(context, "capabilities", "add"):
                problems.append("no capabilities.add")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem: true")
            if problems:
                findings.append(
                    Finding(source, workload.ref, f"container `{name}` is not hardened: needs "
                            + ", ".join(problems))
                )
            if workload.kind in LONG_RUNNING and container in regular:
                missing = [p for p in ("livenessProbe", "readinessProbe") if not container.get(p)]
                if missing:
                    findings.append(
                        Finding(source, workload.ref, f"container `{name}` has no {' and no '.join(missing)}")
                    )
    return findings


# --- in-cluster Redis ------------------------------------------------------------

REDIS_PORT = 6379
# The Spin variable holding the redis:// URL (with the password) the apps use.
REDIS_ADDRESS_VARIABLE = "redis_address"
# The Spin variable holding host:port, the apps' outbound allow-list entry.
REDIS_HOST_VARIABLE = "redis_host"
REDIS_COMPONENT = "components/redis-in-cluster"


def is_redis_image(image: str) -> bool:
    """`redis:7.4`, `docker.io/library/redis@sha256:...`, `<registry>/redis:...`."""
    name = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return name == "redis"


def redis_workloads(docs: list[dict[str, Any]]) -> list[Workload]:
    return [
        w for w in workloads(docs)
        if w.kind != "SpinApp" and any(is_redis_image(c.get("image") or "") for c in w.containers)
    ]


def container_ports(workload: Workload) -> dict[str | int, int]:
    """Port names and numbers of the workload's containers, mapped to the number."""
    ports: dict[str | int, int] = {}
    for container in workload.containers:
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            ports[number] = number
            if port.get("name"):
                ports[port["name"]] = number
    return ports


def redis_services(docs: list[dict[str, Any]], redis: Workload) -> list[dict[str, Any]]:
    """Services that select the Redis pods and forward port 6379 to Redis's 6379."""
    found = []
    ports = container_ports(redis)
    for (namespace, _), service in objects_of(docs, "Service").items():
        selector = dig(service, "spec", "selector")
        if namespace != redis.namespace or not selector:
            continue
        if not selector_matches({"matchLabels": selector}, redis.labels):
            continue
        for port in dig(service, "spec", "ports") or []:
            target = port.get("targetPort", port.get("port"))
            if port.get("port") == REDIS_PORT and ports.get(target) == REDIS_PORT:
                found.append(service)
                break
    return found


def in_cluster_host(service: dict[str, Any]) -> str:
    """The name Terraform outputs for the in-cluster Redis (terraform/locals.tf)."""
    return f"{service['metadata']['name']}.{service['metadata'].get('namespace', 'default')}.svc.cluster.local"


def redis_config(docs: list[dict[str, Any]], redis: Workload) -> tuple[dict[str, str], str | None]:
    """Directives of the redis.conf files the pod mounts from ConfigMaps, and where they are mounted."""
    config_maps = objects_of(docs, "ConfigMap")
    directives: dict[str, str] = {}
    where = None
    mounts = {
        m.get("name"): m.get("mountPath") for c in redis.containers for m in c.get("volumeMounts") or []
    }
    for volume in redis.volumes:
        name = dig(volume, "configMap", "name")
        config_map = config_maps.get((redis.namespace, name)) if name else None
        if not config_map:
            continue
        for key, text in (config_map.get("data") or {}).items():
            if not key.endswith(".conf"):
                continue
            where = f"ConfigMap {name}, key {key}, mounted at {mounts.get(volume.get('name'))}"
            for line in str(text).splitlines():
                parts = line.strip().split(None, 1)
                if parts and not parts[0].startswith("#"):
                    directives[parts[0].lower()] = parts[1].strip() if len(parts) > 1 else ""
    return directives, where


def redis_clients(docs: list[dict[str, Any]], spin: dict[str, Any], namespace: str) -> list[Workload]:
    """The SpinApps whose deployed components (or triggers) use the Redis address."""
    clients = []
    for workload in workloads(docs):
        if workload.kind != "SpinApp" or workload.namespace != namespace:
            continue
        spec = workload.spinapp.get("spec", {}) if workload.spinapp else {}
        selected = spec.get("components") or list(spin_components(spin))
        if REDIS_ADDRESS_VARIABLE in variables_used(spin, selected):
            clients.append(workload)
    return clients


def spinapp_variable(docs: list[dict[str, Any]], app: Workload, name: str) -> str | None:
    """The value a SpinApp gives a variable (literal or from a ConfigMap key)."""
    config_maps = objects_of(docs, "ConfigMap")
    for variable in dig(app.spinapp, "spec", "variables") or []:
        if variable.get("name") != name:
            continue
        if "value" in variable:
            return str(variable["value"])
        key_ref = dig(variable, "valueFrom", "configMapKeyRef")
        if key_ref:
            config_map = config_maps.get((app.namespace, key_ref.get("name"))) or {}
            value = (config_map.get("data") or {}).get(key_ref.get("key"))
            return None if value is None else str(value)
    return None


def check_redis(source: str, docs: list[dict[str, Any]], spin: dict[str, Any]) -> list[Finding]:
    """An in-cluster Redis (components/redis-in-cluster) is durable, private and wired up."""
    findings = []
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    loads = workloads(docs)
    for redis in redis_workloads(docs):
        obj = redis.ref
        if redis.kind != "StatefulSet":
            findings.append(Finding(source, obj, "Redis must run as a StatefulSet (a stable pod with its own disk)"))
        replicas = dig(redis.doc, "spec", "replicas")
        if replicas not in (None, 1):
            findings.append(
                Finding(source, obj, f"runs {replicas} replicas: each would be a separate Redis with its own "
                        "disk and queue, so clients would see different jobs; run exactly 1")
            )
        claims = {dig(t, "metadata", "name") for t in dig(redis.doc, "spec", "volumeClaimTemplates") or []}
        claim_mounts = {
            m.get("mountPath") for c in redis.containers for m in c.get("volumeMounts") or []
            if m.get("name") in claims
        }
        directives, where = redis_config(docs, redis)
        if where is None:
            findings.append(Finding(source, obj, "mounts no redis.conf from a ConfigMap"))
        else:
            if directives.get("appendonly") != "yes":
                findings.append(
                    Finding(source, obj, f"{where}: needs `appendonly yes`, or accepted jobs are lost when "
                            "Redis restarts")
                )
            if directives.get("appendfsync", "everysec") not in ("always", "everysec"):
                findings.append(
                    Finding(source, obj, f"{where}: appendfsync {directives['appendfsync']} leaves the "
                            "flush to the kernel; use always (or everysec)")
                )
            if directives.get("maxmemory-policy", "noeviction") != "noeviction":
                findings.append(
                    Finding(source, obj, f"{where}: maxmemory-policy {directives['maxmemory-policy']} "
                            "evicts queue keys; use noeviction")
                )
            data_dir = directives.get("dir", "").strip("\"'")
            if data_dir not in claim_mounts:
                findings.append(
                    Finding(source, obj, f"{where}: dir `{data_dir or '(unset)'}` is not on a "
                            "volumeClaimTemplate's volume, so the data dies with the pod")
                )
        if not any(key == REDIS_ADDRESS_VARIABLE for _, key, _ in secret_references(redis)):
            findings.append(
                Finding(source, obj, f"reads no `{REDIS_ADDRESS_VARIABLE}` Secret key: its password must come "
                        f"from the same Key Vault secret as the apps' {REDIS_ADDRESS_VARIABLE}")
            )
        services = redis_services(docs, redis)
        if not services:
            findings.append(
                Finding(source, obj, f"no Service selects it on port {REDIS_PORT} (targetPort to the "
                        f"container's {REDIS_PORT})")
            )
        clients = redis_clients(docs, spin, redis.namespace)
        target = endpoint(redis.name, redis.namespace, redis.labels)
        for workload in loads:
            if workload is redis:
                continue
            subject = endpoint(workload.name, workload.namespace, workload.labels)
            allowed = policy_allows(policies, subject, target, "egress", REDIS_PORT, "TCP") and policy_allows(
                policies, target, subject, "ingress", REDIS_PORT, "TCP"
            )
            if workload in clients and not allowed:
                findings.append(
                    Finding(source, workload.ref, f"NetworkPolicies block it from reaching Redis ({obj}) on "
                            f"port {REDIS_PORT}, but its components use {REDIS_ADDRESS_VARIABLE}")
                )
            elif workload not in clients and allowed:
                findings.append(
                    Finding(source, obj, f"NetworkPolicies let {workload.ref} reach Redis on port {REDIS_PORT}; "
                            "only the SpinApps whose components use "
                            f"{REDIS_ADDRESS_VARIABLE} may")
                )
        outsiders = [endpoint(name, ns, labels) for name, (ns, labels) in EXTERNAL_PODS.items()]
        outsiders += [endpoint("a pod without labels", redis.namespace, {}),
                      endpoint("a pod in another namespace", "elsewhere", {})]
        for outsider in outsiders:
            if policy_allows(policies, target, outsider, "ingress", REDIS_PORT, "TCP"):
                findings.append(
                    Finding(source, obj, f"NetworkPolicies let {outsider.name} ({outsider.namespace}) reach "
                            f"Redis on port {REDIS_PORT}")
                )
        for policy in policies:
            if not selects(policy, redis.namespace, redis.labels):
                continue
            for rule in dig(policy, "spec", "ingress") or []:
                if any("ipBlock" in peer for peer in rule.get("from") or []):
                    findings.append(
                        Finding(source, ref(policy), "admits Redis clients by ipBlock; select the client "
                                "pods by label instead")
                    )
        for service in services:
            expected = f"{in_cluster_host(service)}:{REDIS_PORT}"
            for client in clients:
                value = spinapp_variable(docs, client, REDIS_HOST_VARIABLE)
                if value is not None and value != expected:
                    findings.append(
                        Finding(source, client.ref, f"{REDIS_HOST_VARIABLE} is {value}, but Redis runs in the "
                                f"cluster as {expected} (the redis_hostname Terraform outputs with "
                                "redis_mode = \"in-cluster\")")
                    )
    return findings


# --- environments: Terraform's redis_mode vs the overlay ---------------------------

REDIS_MODE_ASSIGNMENT = re.compile(r'^\s*redis_mode\s*=\s*"([^"]*)"', re.MULTILINE)
REDIS_MODE_VARIABLE = re.compile(r'variable\s+"redis_mode"\s*\{(?P<body>.*?)^\}', re.MULTILINE | re.DOTALL)
DEFAULT_ASSIGNMENT = re.compile(r'^\s*default\s*=\s*"([^"]*)"', re.MULTILINE)


def terraform_redis_mode(tfvars: Path, variables_tf: Path) -> str | None:
    """redis_mode of an environment: its .tfvars, else the variable's default."""
    match = REDIS_MODE_ASSIGNMENT.search(tfvars.read_text()) if tfvars.exists() else None
    if match:
        return match.group(1)
    block = REDIS_MODE_VARIABLE.search(variables_tf.read_text()) if variables_tf.exists() else None
    default = DEFAULT_ASSIGNMENT.search(block.group("body")) if block else None
    return default.group(1) if default else None


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def check_redis_mode(
    source: str,
    env: str,
    docs: list[dict[str, Any]],
    tfvars: Path,
    variables_tf: Path,
    outputs_env: Path,
) -> list[Finding]:
    """The overlay of an environment runs Redis where Terraform says it runs.

    redis_mode = "in-cluster": the overlay includes components/redis-in-cluster
    and its terraform-outputs.env points at that Service; "azure-managed": it does
    not (the component would also take 6379 to the private endpoints away from
    the apps).
    """
    obj = f"Overlay/{env}"
    mode = terraform_redis_mode(tfvars, variables_tf)
    services = [s for r in redis_workloads(docs) for s in redis_services(docs, r)]
    outputs = read_env_file(outputs_env)
    hostname = outputs.get("redis_hostname", "")
    where = f"{tfvars.name} of environment {env}"
    if mode == "in-cluster":
        if not services:
            return [
                Finding(source, obj, f"{where} sets redis_mode = \"in-cluster\", but the overlay does not "
                        f"include {REDIS_COMPONENT} (no Redis Service in the build)")
            ]
        expected = in_cluster_host(services[0])
        findings = []
        if hostname != expected:
            findings.append(
                Finding(source, obj, f"{outputs_env.name}: redis_hostname is `{hostname}`, but with redis_mode "
                        f"= \"in-cluster\" Terraform outputs `{expected}`: refresh it from `terraform output`")
            )
        if outputs.get("redis_port") != str(REDIS_PORT):
            findings.append(
                Finding(source, obj, f"{outputs_env.name}: redis_port is `{outputs.get('redis_port')}`, "
                        f"expected {REDIS_PORT}")
            )
        return findings
    if mode == "azure-managed":
        findings = []
        if services:
            findings.append(
                Finding(source, obj, f"{where} has redis_mode = \"azure-managed\", but the overlay includes "
                        f"{REDIS_COMPONENT}: remove it, or set redis_mode = \"in-cluster\"")
            )
        if hostname.endswith(".svc.cluster.local"):
            findings.append(
                Finding(source, obj, f"{outputs_env.name}: redis_hostname `{hostname}` is an in-cluster "
                        "Service, but redis_mode is \"azure-managed\"")
            )
        return findings
    return [Finding(source, obj, f"{where}: unknown redis_mode {mode!r} (azure-managed or in-cluster)")]


def environment_files(path: Path, repo_root: Path) -> tuple[str, Path, Path, Path] | None:
    """(env, tfvars, variables.tf, terraform-outputs.env) for kubernetes/overlays/<env>."""
    if path.resolve().parent != (repo_root / "kubernetes" / "overlays").resolve():
        return None
    env = path.name
    tfvars = repo_root / "terraform" / "environments" / env / "terraform.tfvars"
    if not tfvars.exists():
        return None
    return env, tfvars, repo_root / "terraform" / "variables.tf", path / "terraform-outputs.env"


def check_environments(repo_root: Path = REPO_ROOT) -> list[Finding]:
    """Every Terraform environment has an overlay of the same name."""
    findings = []
    for tfvars in sorted((repo_root / "terraform" / "environments").glob("*/terraform.tfvars")):
        env = tfvars.parent.name
        if not (repo_root / "kubernetes" / "overlays" / env / "kustomization.yaml").exists():
            findings.append(
                Finding(f"terraform/environments/{env}", f"Overlay/{env}", "no kubernetes/overlays/"
                        f"{env}: its redis_mode and Terraform outputs cannot be checked")
            )
    return findings


# --- optional components -----------------------------------------------------------


def included_components(kustomization: Path) -> set[Path]:
    doc = yaml.safe_load((kustomization / "kustomization.yaml").read_text()) or {}
    return {(kustomization / c).resolve() for c in doc.get("components") or []}


def component_variants(repo_root: Path = REPO_ROOT) -> list[tuple[Path, Path]]:
    """(overlay, component) for every component an overlay does not include yet.

    An environment may switch such a component on (components/redis-in-cluster),
    so every overlay is also checked with it.
    """
    components = sorted(p.parent for p in (repo_root / "kubernetes" / "components").glob("*/kustomization.yaml"))
    variants = []
    for overlay in kustomizations(repo_root):
        if overlay.name == "base":
            continue
        included = included_components(overlay)
        variants += [(overlay, c) for c in components if c.resolve() not in included]
    return variants


def build_variant(overlay: Path, component: Path) -> list[dict[str, Any]]:
    """Builds an overlay with one more component (kustomize only takes relative paths)."""
    with tempfile.TemporaryDirectory() as tmp:
        text = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - {os.path.relpath(overlay.resolve(), tmp)}\n"
            f"components:\n  - {os.path.relpath(component.resolve(), tmp)}\n"
        )
        (Path(tmp) / "kustomization.yaml").write_text(text)
        return build(Path(tmp))


def check_variant(
    overlay: Path,
    component: Path,
    spin: dict[str, Any],
    crd_schemas: dict[tuple[str, str, str], dict[str, Any]],
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    repo_root: Path = REPO_ROOT,
) -> list[Finding]:
    def rel(p: Path) -> str:
        return str(p.relative_to(repo_root)) if p.is_relative_to(repo_root) else str(p)

    source = f"{rel(overlay)} + {rel(component)}"
    try:
        docs = build_variant(overlay, component)
    except BuildError as error:
        return [Finding(source, "kustomization", str(error))]
    return check_documents(source, docs, spin, crd_schemas, kubernetes_version)


# --- entry points --------------------------------------------------------------


def check_documents(
    source: str,
    docs: list[dict[str, Any]],
    spin: dict[str, Any],
    crd_schemas: dict[tuple[str, str, str], dict[str, Any]],
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
) -> list[Finding]:
    """All checks on one built set of objects."""
    return (
        check_schemas(source, docs, crd_schemas, kubernetes_version)
        + check_spin_variables(source, docs, spin)
        + check_secret_provider_classes(source, docs)
        + check_secret_refs(source, docs)
        + check_config_refs(source, docs)
        + check_workloads(source, docs)
        + check_spinapps(source, docs, spin)
        + check_selectors(source, docs)
        + check_traffic(source, docs)
        + check_edge(source, docs)
        + check_body_limits(source, docs, spin)
        + check_autoscaling(source, docs, spin)
        + check_pod_hardening(source, docs)
        + check_redis(source, docs, spin)
        + check_apply_order(source, docs, apply_phases(docs))
    )


def kustomizations(repo_root: Path = REPO_ROOT) -> list[Path]:
    """The base and every overlay."""
    root = repo_root / "kubernetes"
    found = [root / "base"] + sorted(p.parent for p in (root / "overlays").glob("*/kustomization.yaml"))
    return [p for p in found if (p / "kustomization.yaml").exists()]


def check_kustomization(
    path: Path,
    spin: dict[str, Any],
    crd_schemas: dict[tuple[str, str, str], dict[str, Any]],
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    repo_root: Path = REPO_ROOT,
) -> list[Finding]:
    source = str(path.relative_to(repo_root)) if path.is_relative_to(repo_root) else str(path)
    try:
        docs = build(path)
    except BuildError as error:
        return [Finding(source, "kustomization", str(error))]
    findings = check_documents(source, docs, spin, crd_schemas, kubernetes_version)
    environment = environment_files(path, repo_root)
    if environment:
        findings += check_redis_mode(source, environment[0], docs, *environment[1:])
        findings += check_terraform_edge(source, environment[0], docs, repo_root / "terraform", environment[3])
        findings += check_managed_redis_egress(source, environment[0], docs, spin, environment[3])
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kustomizations", nargs="*", type=Path, help="default: kubernetes/base and every overlay")
    parser.add_argument("--manifests", type=Path, action="append", default=[],
                        help="check already-built YAML instead of building")
    parser.add_argument("--spin-toml", type=Path, default=REPO_ROOT / "spin.toml")
    parser.add_argument("--kubernetes-version",
                        default=os.environ.get("KUBERNETES_VERSION", DEFAULT_KUBERNETES_VERSION))
    args = parser.parse_args(argv)

    spin = load_spin_manifest(args.spin_toml)
    crd_schemas = load_all_crd_schemas()
    findings: list[Finding] = []
    checked = []
    for path in args.manifests:
        checked.append(str(path))
        findings += check_documents(str(path), load_documents(path.read_text()), spin, crd_schemas,
                                    args.kubernetes_version)
    if not args.manifests:
        targets = [p.resolve() for p in args.kustomizations] or kustomizations()
        for path in targets:
            checked.append(str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path))
            findings += check_kustomization(path, spin, crd_schemas, args.kubernetes_version)
        if not args.kustomizations:
            for overlay, component in component_variants():
                checked.append(f"{overlay.relative_to(REPO_ROOT)} + {component.relative_to(REPO_ROOT)}")
                findings += check_variant(overlay, component, spin, crd_schemas, args.kubernetes_version)
            findings += check_environments()
            shim_findings, notes = check_shim()
            findings += shim_findings
            for note in notes:
                print(f"NOTE {note}")
    for finding in findings:
        print(f"FAIL {finding}")
    verdict = "FAILED" if findings else "passed"
    print(f"kubernetes checks {verdict}: {len(findings)} finding(s) in {', '.join(checked)} "
          f"(schemas: Kubernetes {args.kubernetes_version}; CRDs: spin-operator {SPIN_OPERATOR_VERSION}, "
          + ", ".join(folder for folder, _, _ in CRD_SOURCES) + ")")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
