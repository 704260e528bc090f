"""Tests for tests/infra/kubernetes_checks.py.

The real kustomizations must pass; fixtures/kubernetes/valid is a small
deployment that passes too, and each fixtures/kubernetes/broken-* overlay
breaks one rule of it and must be rejected with a clear message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kubernetes_checks as kc

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kubernetes"


@pytest.fixture(scope="module")
def crd_schemas():
    return kc.load_all_crd_schemas(ROOT)


@pytest.fixture(scope="module")
def fixture_spin():
    return kc.load_spin_manifest(FIXTURES / "spin.toml")


def messages(findings: list[kc.Finding]) -> str:
    return "\n".join(str(f) for f in findings)


# --- the real repository -----------------------------------------------------


@pytest.mark.parametrize("path", kc.kustomizations(ROOT), ids=lambda p: p.name)
def test_real_kustomizations_pass(path, crd_schemas):
    spin = kc.load_spin_manifest(ROOT / "spin.toml")
    findings = kc.check_kustomization(path, spin, crd_schemas, repo_root=ROOT)
    assert findings == [], messages(findings)


def test_every_overlay_is_checked():
    names = {p.name for p in kc.kustomizations(ROOT)}
    assert {"base", "dev", "prod"} <= names


def test_overlays_take_terraform_outputs(crd_schemas):
    docs = kc.build(ROOT / "kubernetes" / "overlays" / "prod")
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert ("ConfigMap", "terraform-outputs") not in kinds, "the local-config ConfigMap must not be applied"
    outputs = dict(
        line.split("=", 1)
        for line in (ROOT / "kubernetes/overlays/prod/terraform-outputs.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert (
        kinds[("ServiceAccount", "api")]["metadata"]["annotations"]["azure.workload.identity/client-id"]
        == outputs["api_identity_client_id"]
    )
    spc = kinds[("SecretProviderClass", "worker-secrets")]["spec"]["parameters"]
    assert spc["clientID"] == outputs["worker_identity_client_id"]
    assert spc["keyvaultName"] == outputs["key_vault_name"]
    assert spc["tenantId"] == outputs["tenant_id"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["redis_host"] == f"{outputs['redis_hostname']}:{outputs['redis_port']}"
    assert config["blob_host"] == f"{outputs['storage_account_name']}.blob.core.windows.net"
    assert config["blob_endpoint"] == outputs["storage_blob_endpoint"].rstrip("/")
    assert config["blob_container"] == outputs["results_container_name"]
    images = {d["spec"]["image"] for d in docs if d["kind"] == "SpinApp"}
    assert len(images) == 1 and images.pop().startswith(outputs["acr_login_server"] + "/jobs-platform:")


def test_worker_does_not_get_the_api_secrets():
    docs = kc.build(ROOT / "kubernetes" / "overlays" / "dev")
    worker = next(d for d in docs if d["kind"] == "SpinApp" and d["metadata"]["name"] == "worker")
    secret_names = {
        v["valueFrom"]["secretKeyRef"]["name"]
        for v in worker["spec"]["variables"]
        if "secretKeyRef" in (v.get("valueFrom") or {})
    }
    assert secret_names == {"worker-secrets"}


# --- fixtures ----------------------------------------------------------------


def test_valid_fixture_passes(crd_schemas, fixture_spin):
    findings = kc.check_kustomization(FIXTURES / "valid", fixture_spin, crd_schemas, repo_root=ROOT)
    assert findings == [], messages(findings)


BROKEN = {
    "broken-unknown-variable": "variable `not_declared` is not declared in spin.toml [variables]",
    "broken-missing-required": "required Spin variable `api_keys` (no default in spin.toml) is not set",
    "broken-secret-literal": "secret Spin variable `api_keys` must come from a secretKeyRef",
    "broken-secret-key": "reads key `api-keys` of Secret `api-secrets`, but the SecretProviderClass only syncs: api_keys",
    "broken-config-key": "reads key `loglevel` missing from ConfigMap `settings`",
    "broken-latest-image": "image `registry.example.com/demo:latest` is not pinned",
    "broken-no-resources": "container `api` has no resources limits.cpu, limits.memory",
    "broken-default-service-account": "SpinApp/api: has no dedicated serviceAccountName",
    "broken-token-automount": "ServiceAccount `api` mounts an API token",
    "broken-policy-selector": "NetworkPolicy/api: podSelector {'matchLabels': {'app': 'api'}} matches no pod",
    "broken-pdb-selector": "PodDisruptionBudget/api: selector",
    "broken-gateway-blocked": "HTTPRoute/api: NetworkPolicies block the NGINX of Gateway Gateway/public from "
    "reaching SpinApp/api on port 80",
    "broken-crd-schema": "does not match the SpinApp CRD at spec: Additional properties are not allowed ('replica'",
    "broken-core-schema": "invalid NetworkPolicy at spec: Additional properties are not allowed ('ingresss'",
    "broken-probe-path": "liveness probe path /healthz is not routed to any of its components",
    "broken-no-http-component": "none of its components has an HTTP trigger, so it cannot be probed",
    "broken-client-id": "clientID 33333333-3333-3333-3333-333333333333 differs from the "
    "azure.workload.identity/client-id",
    "broken-missing-executor": "executor `containerd-shim-spin-v2` is not a SpinAppExecutor in namespace demo",
}


def test_every_broken_fixture_is_listed():
    on_disk = {p.name for p in FIXTURES.glob("broken-*") if p.is_dir()}
    assert on_disk == set(BROKEN) | set(BROKEN_REDIS) | set(BROKEN_EDGE)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_fixture_is_rejected(name, crd_schemas, fixture_spin):
    findings = kc.check_kustomization(FIXTURES / name, fixture_spin, crd_schemas, repo_root=ROOT)
    text = messages(findings)
    assert BROKEN[name] in text, text
    # Every message names the build and the object it is about.
    assert all(f.source.endswith(name) and "/" in f.obj for f in findings)


def test_cli_fails_with_a_verdict(capsys):
    code = kc.main(["--spin-toml", str(FIXTURES / "spin.toml"), str(FIXTURES / "broken-secret-key")])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL " in out and "kubernetes checks FAILED: 1 finding(s)" in out


def test_cli_passes_the_valid_fixture(capsys):
    code = kc.main(["--spin-toml", str(FIXTURES / "spin.toml"), str(FIXTURES / "valid")])
    assert code == 0
    assert "kubernetes checks passed" in capsys.readouterr().out


def test_unbuildable_kustomization_is_reported(tmp_path, crd_schemas, fixture_spin):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    findings = kc.check_kustomization(tmp_path, fixture_spin, crd_schemas, repo_root=ROOT)
    assert len(findings) == 1 and "kubectl kustomize" in findings[0].message


# --- helpers -----------------------------------------------------------------


def test_crds_dir_honours_the_environment(monkeypatch, tmp_path):
    (tmp_path / "crd.yaml").write_text("kind: CustomResourceDefinition\n")
    monkeypatch.setenv("SPINKUBE_CRDS_DIR", str(tmp_path))
    assert kc.crds_dir(ROOT) == tmp_path


def test_crds_dir_uses_the_cache_when_the_shared_copy_is_absent(monkeypatch, tmp_path):
    cache = tmp_path / ".tools" / "spinkube-crds" / f"v{kc.SPIN_OPERATOR_VERSION}"
    cache.mkdir(parents=True)
    (cache / "spin-operator.crds.yaml").write_text("kind: CustomResourceDefinition\n")
    monkeypatch.setenv("SPINKUBE_CRDS_DIR", str(tmp_path / "absent"))
    assert kc.crds_dir(tmp_path) == cache


def test_strict_schema_rejects_unknown_fields_but_keeps_open_maps():
    schema = kc.strict_schema(
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    )
    assert schema["additionalProperties"] is False
    assert schema["properties"]["spec"]["additionalProperties"] is False
    assert schema["properties"]["labels"]["additionalProperties"] == {"type": "string"}


@pytest.mark.parametrize(
    ("route", "path", "expected"),
    [("/...", "/healthz", True), ("/worker/...", "/worker/readyz", True), ("/worker/...", "/healthz", False),
     ("/exact", "/exact", True), ("/exact", "/exact/x", False)],
)
def test_route_matching(route, path, expected):
    assert kc.route_matches(route, path) is expected


def test_crds_are_downloaded_into_the_cache_when_absent(monkeypatch, tmp_path):
    shared = Path(kc.crds_dir(ROOT))
    payload = b"\n---\n".join(p.read_bytes() for p in sorted(shared.glob("*.yaml")))
    requested = []

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return payload

    def fake_urlopen(url, timeout):
        requested.append(url)
        return Response()

    monkeypatch.setattr(kc.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setenv("SPINKUBE_CRDS_DIR", str(tmp_path / "absent"))
    directory = kc.crds_dir(tmp_path)
    assert requested == [kc.CRDS_URL]
    assert directory == tmp_path / ".tools" / "spinkube-crds" / "v0.6.1"
    schemas = kc.load_crd_schemas(directory)
    assert ("core.spinkube.dev", "v1alpha1", "SpinApp") in schemas
    assert ("core.spinkube.dev", "v1alpha1", "SpinAppExecutor") in schemas


def test_prod_zone_spread_patch_selects_the_api_pods():
    import kubernetes_validate
    import yaml

    patch = yaml.safe_load((ROOT / "kubernetes/overlays/prod/api-zone-spread-patch.yaml").read_text())
    docs = kc.build(ROOT / "kubernetes" / "overlays" / "prod")
    loads = kc.workloads(docs)
    api = next(w for w in loads if w.kind == "SpinApp" and w.name == "api")
    others = [w for w in loads if w is not api]
    constraints = patch["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in constraints:
        assert kc.selector_matches(constraint["labelSelector"], api.labels)
        assert not any(kc.selector_matches(constraint["labelSelector"], w.labels) for w in others)
    # Merged into a Deployment like the one spin-operator creates, it is valid.
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "jobs-platform"},
        "spec": {
            "selector": {"matchLabels": {"core.spinkube.dev/app-name": "api"}},
            "template": {
                "metadata": {"labels": api.labels},
                "spec": {
                    "containers": [{"name": "api", "image": "x:1", "command": ["/"]}],
                    "topologySpreadConstraints": constraints,
                },
            },
        },
    }
    kubernetes_validate.validate(deployment, kc.DEFAULT_KUBERNETES_VERSION, strict=True)


# --- the in-cluster Redis (components/redis-in-cluster) ----------------------

# Each builds on fixtures/kubernetes/redis-valid (the dev overlay with the
# component) and is checked against the real spin.toml.
BROKEN_REDIS = {
    "broken-redis-open-policy": "StatefulSet/redis: NetworkPolicies let CronJob/sweep reach Redis on port 6379",
    "broken-redis-worker-blocked": "SpinApp/worker: NetworkPolicies block it from reaching Redis (StatefulSet/redis)",
    "broken-redis-any-namespace": "NetworkPolicies let a pod in another namespace (elsewhere) reach Redis",
    "broken-redis-ip-block": "NetworkPolicy/redis: admits Redis clients by ipBlock",
    "broken-redis-no-aof": "needs `appendonly yes`, or accepted jobs are lost when Redis restarts",
    "broken-redis-replicas": "runs 2 replicas: each would be a separate Redis",
    "broken-redis-writable-root": "container `redis` is not hardened: needs allowPrivilegeEscalation: false, "
    "readOnlyRootFilesystem: true",
    "broken-redis-service-port": "StatefulSet/redis: no Service selects it on port 6379",
    "broken-redis-host": "SpinApp/worker: redis_host is redis-jobs-dev.redis.cache.windows.net:6379, but Redis "
    "runs in the cluster as redis.jobs-platform.svc.cluster.local:6379",
}
REDIS_MODE = FIXTURES / "redis-mode"


@pytest.fixture(scope="module")
def real_spin():
    return kc.load_spin_manifest(ROOT / "spin.toml")


def test_redis_fixture_passes(crd_schemas, real_spin):
    findings = kc.check_kustomization(FIXTURES / "redis-valid", real_spin, crd_schemas, repo_root=ROOT)
    assert findings == [], messages(findings)


@pytest.mark.parametrize("name", sorted(BROKEN_REDIS))
def test_broken_redis_fixture_is_rejected(name, crd_schemas, real_spin):
    findings = kc.check_kustomization(FIXTURES / name, real_spin, crd_schemas, repo_root=ROOT)
    text = messages(findings)
    assert BROKEN_REDIS[name] in text, text
    assert all(f.source.endswith(name) and "/" in f.obj for f in findings)


def test_every_overlay_is_also_checked_with_the_redis_component(crd_schemas, real_spin):
    variants = kc.component_variants(ROOT)
    component = ROOT / "kubernetes" / "components" / "redis-in-cluster"
    assert {(o.name, c) for o, c in variants} >= {("dev", component), ("prod", component)}
    for overlay, extra in variants:
        findings = kc.check_variant(overlay, extra, real_spin, crd_schemas, repo_root=ROOT)
        assert findings == [], messages(findings)


def test_redis_component_wires_the_apps_to_the_service():
    docs = kc.build(FIXTURES / "redis-valid")
    (redis,) = kc.redis_workloads(docs)
    (service,) = kc.redis_services(docs, redis)
    assert kc.in_cluster_host(service) == "redis.jobs-platform.svc.cluster.local"
    clients = {w.name for w in kc.redis_clients(docs, kc.load_spin_manifest(ROOT / "spin.toml"), redis.namespace)}
    assert clients == {"api", "worker"}
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("jobs-platform-"))
    assert config["data"]["redis_host"] == "redis.jobs-platform.svc.cluster.local:6379"
    # The api and worker no longer send 6379 to the private endpoint subnet; Blob Storage (443) stays.
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] in ("api", "worker")):
        for rule in policy["spec"]["egress"]:
            if any("ipBlock" in peer for peer in rule["to"]):
                assert [p["port"] for p in rule["ports"]] == [443]


def test_terraform_in_cluster_host_is_the_component_service():
    """terraform/locals.tf builds redis_hostname from the same namespace and name."""
    import re

    locals_tf = (ROOT / "terraform" / "locals.tf").read_text()
    namespace = re.search(r'kubernetes_namespace\s*=\s*"([^"]+)"', locals_tf).group(1)
    template = re.search(r'in_cluster_redis_host\s*=\s*"([^"]+)"', locals_tf).group(1)
    host = template.replace("${local.kubernetes_namespace}", namespace)
    docs = kc.build(FIXTURES / "redis-valid")
    (redis,) = kc.redis_workloads(docs)
    (service,) = kc.redis_services(docs, redis)
    assert host == kc.in_cluster_host(service)


def test_terraform_redis_mode_defaults_to_the_variable_default():
    variables = ROOT / "terraform" / "variables.tf"
    assert kc.terraform_redis_mode(REDIS_MODE / "default.tfvars", variables) == "azure-managed"
    assert kc.terraform_redis_mode(REDIS_MODE / "in-cluster.tfvars", variables) == "in-cluster"


@pytest.fixture(scope="module")
def builds():
    return {
        "azure": kc.build(ROOT / "kubernetes" / "overlays" / "dev"),
        "in-cluster": kc.build(FIXTURES / "redis-valid"),
    }


@pytest.mark.parametrize(
    ("build", "tfvars", "outputs", "expected"),
    [
        ("azure", "default.tfvars", "azure-managed-outputs.env", None),
        ("azure", "azure-managed.tfvars", "azure-managed-outputs.env", None),
        ("in-cluster", "in-cluster.tfvars", "in-cluster-outputs.env", None),
        ("azure", "in-cluster.tfvars", "in-cluster-outputs.env",
         'sets redis_mode = "in-cluster", but the overlay does not include components/redis-in-cluster'),
        ("in-cluster", "in-cluster.tfvars", "azure-managed-outputs.env",
         "redis_hostname is `redis-jobsdevab12c.swedencentral.redis.azure.net`, but with redis_mode = \"in-cluster\" "
         "Terraform outputs `redis.jobs-platform.svc.cluster.local`"),
        ("in-cluster", "azure-managed.tfvars", "in-cluster-outputs.env",
         'has redis_mode = "azure-managed", but the overlay includes components/redis-in-cluster'),
        ("in-cluster", "default.tfvars", "in-cluster-outputs.env",
         "redis_hostname `redis.jobs-platform.svc.cluster.local` is an in-cluster Service"),
        ("azure", "unknown.tfvars", "azure-managed-outputs.env", "unknown redis_mode 'managed-redis'"),
    ],
)
def test_redis_mode_matches_the_overlay(builds, build, tfvars, outputs, expected):
    findings = kc.check_redis_mode(
        "overlay", "dev", builds[build], REDIS_MODE / tfvars, ROOT / "terraform" / "variables.tf", REDIS_MODE / outputs
    )
    if expected is None:
        assert findings == [], messages(findings)
    else:
        assert expected in messages(findings)
        assert all(f.obj == "Overlay/dev" for f in findings)


def test_real_overlays_are_checked_against_their_terraform_environment():
    for env in ("dev", "prod"):
        found = kc.environment_files(ROOT / "kubernetes" / "overlays" / env, ROOT)
        assert found is not None and found[0] == env
        assert found[1] == ROOT / "terraform" / "environments" / env / "terraform.tfvars"
    assert kc.environment_files(FIXTURES / "redis-valid", ROOT) is None
    assert kc.check_environments(ROOT) == []


def test_terraform_environment_without_overlay_is_reported(tmp_path):
    (tmp_path / "terraform" / "environments" / "staging").mkdir(parents=True)
    (tmp_path / "terraform" / "environments" / "staging" / "terraform.tfvars").write_text('environment = "staging"\n')
    findings = kc.check_environments(tmp_path)
    assert len(findings) == 1 and "no kubernetes/overlays/staging" in findings[0].message


@pytest.mark.parametrize(
    ("image", "expected"),
    [("redis:7.4.8-alpine@sha256:" + "a" * 64, True), ("docker.io/library/redis:7", True),
     ("example.azurecr.io/redis@sha256:" + "b" * 64, True), ("redis-exporter:1", False),
     ("bitnami/redis-sentinel:7", False), ("curlimages/curl:8", False)],
)
def test_redis_images(image, expected):
    assert kc.is_redis_image(image) is expected


# --- the edge, autoscaling and the apply order ---------------------------------

# Each builds on the real dev overlay and is checked against the real spin.toml.
BROKEN_EDGE = {
    "broken-edge-admin-public": "HTTPRoute/api: routes /api/v1/admin through Gateway Gateway/public, which is not "
    "internal",
    "broken-edge-solver-blocked": "Gateway/public: NetworkPolicies block its NGINX from the ACME HTTP-01 solver pods "
    "(acme.cert-manager.io/http01-solver) on port 8089",
    "broken-edge-unknown-issuer": "cert-manager.io/cluster-issuer `letsencrypt-prod` is not a ClusterIssuer of "
    "kubernetes/platform/cluster-issuers.yaml",
    "broken-edge-solver-namespace": "listener `http` does not admit routes from jobs-platform-edge, where "
    "cert-manager creates the solver's HTTPRoute",
    "broken-edge-control-plane": "Gateway/public: NetworkPolicies block its NGINX agent from the NGINX Gateway "
    "Fabric control plane",
    "broken-edge-dynamic-ip": "public Gateway without spec.infrastructure.annotations "
    "service.beta.kubernetes.io/azure-pip-name",
    "broken-edge-body-limit": "HTTPRoute/api: NGINX's client_max_body_size is 1m (NGINX's default), below "
    "max_body_bytes 8388608 of SpinApp/api",
    "broken-edge-body-unbounded": "HTTPRoute/api: ClientSettingsPolicy api sets body.maxSize 0",
    "broken-keda-blocked": "ScaledObject/worker: NetworkPolicies block KEDA's operator",
    "broken-keda-api-to-zero": "ScaledObject/api: minReplicaCount 0: SpinApp/api serves HTTP routes and must not "
    "scale to zero",
    "broken-keda-replicas": "SpinApp/worker: sets replicas and enableAutoscaling",
    "broken-keda-secret-key": "TriggerAuthentication/backlog: reads key `admin-token` of Secret `api-secrets`, "
    "which no SecretProviderClass syncs",
    "broken-keda-backlog-path": "metrics-api path /api/v1/admin/backlog is not routed to a component of "
    "SpinApp/worker",
    "broken-apply-order": "HTTPRoute/api-admin: phase 3 applies it in namespace elsewhere, which no earlier phase "
    "creates",
}


@pytest.mark.parametrize("name", sorted(BROKEN_EDGE))
def test_broken_edge_fixture_is_rejected(name, crd_schemas, real_spin):
    findings = kc.check_kustomization(FIXTURES / name, real_spin, crd_schemas, repo_root=ROOT)
    text = messages(findings)
    assert BROKEN_EDGE[name] in text, text
    assert all(f.source.endswith(name) and "/" in f.obj for f in findings)


def test_dev_overlay_routes_and_policies():
    docs = kc.build(ROOT / "kubernetes" / "overlays" / "dev")
    gateways = kc.objects_of(docs, "Gateway")
    public, internal = gateways[("jobs-platform-edge", "public")], gateways[("jobs-platform-edge", "internal")]
    assert not kc.is_internal(public) and kc.is_internal(internal)
    routes = kc.objects_of(docs, "HTTPRoute")
    api = routes[("jobs-platform", "api")]
    # The public route serves the job API and the health routes, never the operator routes.
    for path in ("/api/v1/jobs", "/api/v1/jobs/abc/result", "/api/v1/openapi.json", "/healthz", "/readyz"):
        assert any(kc.rule_covers(rule, path) for rule in api["spec"]["rules"]), path
    for path in kc.ADMIN_PATHS:
        assert not any(kc.rule_covers(rule, path) for rule in api["spec"]["rules"]), path
    admin = routes[("jobs-platform", "api-admin")]
    assert [p["name"] for p in admin["spec"]["parentRefs"]] == ["internal"]
    outputs = kc.read_env_file(ROOT / "kubernetes/overlays/dev/terraform-outputs.env")
    annotations = public["spec"]["infrastructure"]["annotations"]
    assert annotations[kc.PIP_NAME_ANNOTATION] == outputs["edge_public_ip_name"]
    assert annotations[kc.PIP_GROUP_ANNOTATION] == outputs["edge_public_ip_resource_group"]
    assert {h for r in (api, routes[("jobs-platform", "https-redirect")]) for h in r["spec"]["hostnames"]} == {
        "api.dev.jobs.example.com"}
    assert all(l["hostname"] == "api.dev.jobs.example.com" for l in public["spec"]["listeners"])


@pytest.mark.parametrize(
    ("match", "path", "expected"),
    [({"path": {"type": "PathPrefix", "value": "/api/v1"}}, "/api/v1/admin/sweep", True),
     ({"path": {"type": "PathPrefix", "value": "/api/v1/jobs"}}, "/api/v1/jobsx", False),
     ({"path": {"type": "PathPrefix", "value": "/api/v1/jobs/"}}, "/api/v1/jobs", True),
     ({"path": {"type": "Exact", "value": "/healthz"}}, "/healthz/x", False),
     ({"path": {"type": "RegularExpression", "value": "/api/.*"}}, "/api/v1/admin", True),
     (None, "/api/v1/admin", True)],
)
def test_path_matching(match, path, expected):
    assert kc.path_covers(match, path) is expected


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_real_overlays_apply_in_deploy_order(env):
    docs = kc.build(ROOT / "kubernetes" / "overlays" / env)
    phases = kc.apply_phases(docs)
    assert [sorted({d["kind"] for d in p}) for p in phases[:2]] == [["Namespace"], ["SpinAppExecutor"]]
    assert [d["kind"] for d in phases[2]][-2:] == ["SpinApp", "SpinApp"]
    assert kc.check_apply_order(env, docs, phases) == []


def test_apply_order_rejects_spinapps_before_their_executor():
    docs = kc.build(ROOT / "kubernetes" / "overlays" / "dev")
    phases = kc.apply_phases(docs)
    # The order the built overlay lists them in: SpinApps before the executor.
    reordered = [phases[0], [d for d in phases[2] if d["kind"] == "SpinApp"],
                 phases[1] + [d for d in phases[2] if d["kind"] != "SpinApp"]]
    text = messages(kc.check_apply_order("dev", docs, reordered))
    assert "SpinApp/api: phase 2 applies it before its executor `containerd-shim-spin`" in text


# --- fixtures only a real API server rejects -----------------------------------

SERVER_FIXTURES = sorted(p for p in FIXTURES.glob("server-*") if p.is_dir())


def test_server_fixtures_are_complete():
    names = {p.name for p in SERVER_FIXTURES}
    assert "server-valid" in names and len(names) >= 6
    for path in SERVER_FIXTURES:
        if path.name != "server-valid":
            assert (path / "expected.txt").read_text().strip(), path


@pytest.mark.parametrize("path", SERVER_FIXTURES, ids=lambda p: p.name)
def test_server_fixtures_pass_the_offline_schemas(path, crd_schemas):
    """What the server-* fixtures break (CEL rules, Pod Security) is invisible to
    the offline schema checks: only scripts/check-kubernetes.sh's API server
    rejects them."""
    docs = kc.build(path)
    assert kc.check_schemas(path.name, docs, crd_schemas, kc.DEFAULT_KUBERNETES_VERSION) == []


# --- the Shim --------------------------------------------------------------------

SHIM = """apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata:
  name: spin-v2
spec:
  nodeSelector:
    spin: "true"
  fetchStrategy:
    platforms:
      - os: linux
        arch: x86_64
        location: https://example.com/shim.tar.gz
        sha256: "%s"
  runtimeClass:
    name: wasmtime-spin-v2
    handler: spin-v2
  rolloutStrategy:
    type: recreate
"""


def shim_repo(tmp_path, text):
    (tmp_path / "kubernetes" / "platform").mkdir(parents=True)
    (tmp_path / "kubernetes" / "base").mkdir(parents=True)
    (tmp_path / "kubernetes" / "base" / "spin-app-executor.yaml").write_text(
        (ROOT / "kubernetes" / "base" / "spin-app-executor.yaml").read_text())
    (tmp_path / kc.PLATFORM_SHIM).write_text(text)
    return tmp_path


def test_real_shim_passes():
    findings, _ = kc.check_shim(ROOT)
    assert findings == [], messages(findings)


def test_recorded_shim_checksum_passes_without_a_note(tmp_path):
    findings, notes = kc.check_shim(shim_repo(tmp_path, SHIM % ("a" * 64)))
    assert findings == [] and notes == []


def test_unrecorded_shim_checksum_is_a_note(tmp_path):
    findings, notes = kc.check_shim(shim_repo(tmp_path, SHIM % ""))
    assert findings == [] and "not recorded yet" in notes[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [(lambda t: t.replace('sha256: "%s"', 'sha256: "abc"'), "sha256 is not 64 hex digits"),
     (lambda t: t.replace('        sha256: "%s"\n', ""), "platform x86_64: no sha256"),
     (lambda t: t.replace("fetchStrategy:\n", "fetchStrategy:\n    type: anonymousHttp\n"),
      "fetchStrategy.type is ignored"),
     (lambda t: t.replace("name: wasmtime-spin-v2", "name: wasmtime-spin"), "is not the SpinAppExecutor's "
      "runtimeClassName wasmtime-spin-v2")],
)
def test_broken_shim_is_rejected(tmp_path, change, expected):
    text = change(SHIM)
    if "%s" in text:
        text = text % ("a" * 64)
    findings, _ = kc.check_shim(shim_repo(tmp_path, text))
    assert expected in messages(findings)


# --- the edge in Terraform ------------------------------------------------------

EDGE_TERRAFORM = FIXTURES / "edge-terraform"


def terraform_copy(tmp_path, change=None):
    import shutil

    target = tmp_path / "terraform"
    shutil.copytree(EDGE_TERRAFORM / "terraform", target)
    if change:
        path, old, new = change
        text = (target / path).read_text()
        assert old in text
        (target / path).write_text(text.replace(old, new))
    return target


@pytest.fixture(scope="module")
def dev_docs():
    return kc.build(ROOT / "kubernetes" / "overlays" / "dev")


def test_edge_terraform_fixture_passes(tmp_path, dev_docs):
    findings = kc.check_terraform_edge("dev", "dev", dev_docs, terraform_copy(tmp_path),
                                       ROOT / "kubernetes/overlays/dev/terraform-outputs.env")
    assert findings == [], messages(findings)


@pytest.mark.parametrize(
    ("change", "expected"),
    [(("modules/networking/main.nsg.tf", '["80", "443"]', '["443"]'),
      "no NSG rule allows TCP 80 from Internet to the edge public IP"),
     (("modules/networking/main.nsg.tf", "var.edge_public_ip_address", "var.aks_subnet_prefix"),
      "no NSG rule allows TCP 443 from Internet to the edge public IP"),
     (("modules/networking/main.nsg.tf", '"Internet"', '"VirtualNetwork"'),
      "no NSG rule allows TCP 80 from Internet"),
     (("main.tf", 'resource "azurerm_public_ip" "edge"', 'resource "azurerm_public_ip" "nat"'),
      "terraform/ has no azurerm_public_ip for the edge"),
     (("outputs.tf", 'output "edge_fqdn"', 'output "edge_dns_name"'),
      "terraform/outputs.tf has no output `edge_fqdn`")],
)
def test_broken_edge_terraform_is_rejected(tmp_path, dev_docs, change, expected):
    findings = kc.check_terraform_edge("dev", "dev", dev_docs, terraform_copy(tmp_path, change),
                                       ROOT / "kubernetes/overlays/dev/terraform-outputs.env")
    assert expected in messages(findings)


def test_edge_outputs_must_reach_the_gateway(tmp_path, dev_docs):
    outputs = tmp_path / "terraform-outputs.env"
    text = (ROOT / "kubernetes/overlays/dev/terraform-outputs.env").read_text()
    outputs.write_text(text.replace("edge_public_ip_name=pip-jobs-dev-edge-placeholder", "edge_public_ip_name=pip-other"))
    findings = kc.check_terraform_edge("dev", "dev", dev_docs, terraform_copy(tmp_path), outputs)
    assert "service.beta.kubernetes.io/azure-pip-name is pip-jobs-dev-edge-placeholder, but Terraform's " \
        "edge_public_ip_name is pip-other" in messages(findings)


def test_schema_dirs_download_the_crds_when_the_shared_copy_is_absent(monkeypatch, tmp_path):
    """A clone without ../shared fetches the same files from the projects' release tags."""
    # The real copies (../shared/schemas, or what an earlier run downloaded) serve the fake downloads.
    real = dict(zip([folder for folder, _, _ in kc.CRD_SOURCES], kc.schema_dirs(ROOT)[1:]))
    spinkube = kc.crds_dir(ROOT)
    requested = []

    class Response:
        def __init__(self, data):
            self.data = data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return self.data

    def fake_urlopen(url, timeout):
        requested.append(url)
        folder = next(f for f, _, prefix in kc.CRD_SOURCES if url.startswith(prefix))
        return Response((real[folder] / url.rsplit("/", 1)[1]).read_bytes())

    cache = tmp_path / ".tools" / "spinkube-crds" / f"v{kc.SPIN_OPERATOR_VERSION}"
    cache.mkdir(parents=True)
    (cache / "spin-operator.crds.yaml").write_text(
        "\n---\n".join(p.read_text() for p in sorted(spinkube.glob("*.yaml"))))
    monkeypatch.setattr(kc.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setenv("SHARED_SCHEMAS_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("SPINKUBE_CRDS_DIR", str(tmp_path / "absent"))
    schemas = kc.load_all_crd_schemas(tmp_path)
    assert len(requested) == sum(len(files) for _, files, _ in kc.CRD_SOURCES)
    assert all(u.startswith("https://raw.githubusercontent.com/") and "/v" in u for u in requested)
    for key in [("gateway.networking.k8s.io", "v1", "HTTPRoute"), ("keda.sh", "v1alpha1", "ScaledObject"),
                ("cert-manager.io", "v1", "ClusterIssuer"), ("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass")]:
        assert key in schemas
    # A second load reads the cache, no download.
    kc.load_all_crd_schemas(tmp_path)
    assert len(requested) == sum(len(files) for _, files, _ in kc.CRD_SOURCES)


@pytest.mark.parametrize(("port", "expected"), [
    ("10000", None),
    ("6379", "SpinApp/api: NetworkPolicies block its Redis traffic: no egress to the private endpoint subnet on "
     "TCP 6379, the redis_port Terraform outputs"),
])
def test_managed_redis_egress_follows_the_terraform_port(tmp_path, dev_docs, real_spin, port, expected):
    outputs = tmp_path / "terraform-outputs.env"
    outputs.write_text((ROOT / "kubernetes/overlays/dev/terraform-outputs.env").read_text()
                       .replace("redis_port=10000", f"redis_port={port}"))
    findings = kc.check_managed_redis_egress("dev", "dev", dev_docs, real_spin, outputs)
    if expected is None:
        assert findings == [], messages(findings)
    else:
        assert expected in messages(findings)
        assert "SpinApp/worker" in messages(findings)


def test_in_cluster_redis_needs_no_private_endpoint_egress(tmp_path, real_spin):
    docs = kc.build(FIXTURES / "redis-valid")
    outputs = tmp_path / "terraform-outputs.env"
    outputs.write_text("redis_port=6379\n")
    assert kc.check_managed_redis_egress("dev", "dev", docs, real_spin, outputs) == []


def test_nginx_sizes_are_binary_multiples():
    assert kc.nginx_size("9m") == 9 * 1024 * 1024
    assert kc.nginx_size("512k") == 512 * 1024
    assert kc.nginx_size("1G") == 1 << 30
    assert kc.nginx_size("1048576") == 1048576
    assert kc.nginx_size("0") == 0
    assert kc.nginx_size("9 MB") is None
