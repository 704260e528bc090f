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
    return kc.load_crd_schemas(kc.crds_dir(ROOT))


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
    "broken-ingress-blocked": "NetworkPolicies block the ingress controller from reaching SpinApp/api on port 80",
    "broken-crd-schema": "does not match the SpinApp CRD at spec: Additional properties are not allowed ('replica'",
    "broken-core-schema": "invalid Ingress at spec: Additional properties are not allowed ('tlss'",
    "broken-body-size": "proxy-body-size 8m (8388608 bytes) differs from the api's max_body_bytes (1048576 bytes)",
    "broken-probe-path": "liveness probe path /healthz is not routed to any of its components",
    "broken-no-http-component": "none of its components has an HTTP trigger, so it cannot be probed",
    "broken-client-id": "clientID 33333333-3333-3333-3333-333333333333 differs from the "
    "azure.workload.identity/client-id",
    "broken-missing-executor": "executor `containerd-shim-spin-v2` is not a SpinAppExecutor in namespace demo",
}


def test_every_broken_fixture_is_listed():
    on_disk = {p.name for p in FIXTURES.glob("broken-*") if p.is_dir()}
    assert on_disk == set(BROKEN)


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
    ("size", "expected"), [("8m", 8388608), ("1024", 1024), ("64k", 65536), ("1g", 1073741824), ("8 MB", None)]
)
def test_nginx_sizes(size, expected):
    assert kc.nginx_bytes(size) == expected


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
