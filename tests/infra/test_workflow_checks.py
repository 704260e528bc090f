"""Tests for tests/infra/workflow_checks.py and the deploy/smoke scripts.

The real repository must pass; each fixture under fixtures/workflows/ is a
small broken file that must be rejected with a clear message.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

import workflow_checks as wc

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflows"
VENV_TOOLS = Path(os.environ.get("VENV_DIR", ROOT / ".venv")) / "tools" / "bin"


def messages(findings: list[wc.Finding]) -> str:
    return "\n".join(str(f) for f in findings)


def fixture_findings(name: str) -> str:
    return messages(wc.check_file(FIXTURES, FIXTURES / name))


# --- the real repository -----------------------------------------------------


def test_real_repository_passes():
    findings = wc.check_repo(ROOT)
    assert findings == [], messages(findings)


def test_real_pins_are_full_shas_with_versions():
    for path in wc.workflow_files(ROOT):
        assert wc.check_pins(path.name, path.read_text()) == []


def test_cli_exit_codes(tmp_path):
    assert wc.main(["--root", str(ROOT)]) == 0
    assert wc.main(["--root", str(tmp_path)]) == 1


# --- generic checks on fixtures ----------------------------------------------


def test_rejects_unpinned_actions():
    out = fixture_findings("unpinned-action.yml")
    assert "`uses: actions/checkout@v4` is not pinned to a full 40-hex commit SHA" in out
    assert "`uses: Swatinem/rust-cache@master` is not pinned" in out


def test_rejects_sha_without_version_comment():
    out = fixture_findings("sha-without-version.yml")
    assert "has no `# vX.Y.Z` version comment" in out


def test_rejects_secret_based_azure_login():
    out = fixture_findings("secret-login.yml")
    assert "azure/login uses `creds` (a client secret): use OIDC" in out
    assert "secret-based Azure sign-in marker 'azure_credentials'" in out
    assert "azure/login has no `client-id`" in out


def test_rejects_ids_from_secrets_and_stray_id_token():
    out = fixture_findings("ids-from-secrets.yml")
    assert "azure/login `client-id` comes from a secret" in out
    assert "job lint: `id-token: write` but no Azure OIDC sign-in" in out


def test_rejects_broad_permissions():
    out = fixture_findings("broad-permissions.yml")
    assert "no top-level `permissions:`" in out
    assert "job build: `permissions: write-all`" in out


# --- the pipeline ------------------------------------------------------------


def pipeline_findings(doc: dict) -> str:
    return messages(wc.check_pipeline(wc.PIPELINE, doc, ROOT))


def real_pipeline() -> dict:
    return wc.load_yaml(ROOT / wc.PIPELINE)


def test_rejects_pipeline_without_stages():
    out = pipeline_findings(wc.load_yaml(FIXTURES / "pipeline-missing-stages.yml"))
    for stage in ("test", "push", "deploy"):
        assert f"no `{stage}` job (stage {stage.title()})" in out


def test_rejects_pipeline_with_wrong_wiring():
    path = FIXTURES / "pipeline-wrong-wiring.yml"
    out = pipeline_findings(wc.load_yaml(path)) + "\n" + fixture_findings(path.name)
    for expected in (
        "`push` trigger is filtered",
        "job build has an `if:`",
        "job build does not run `spin build`",
        "job test does not set E2E_RUNTIME=spin",
        "job test has no Redis service container",
        "job push is not limited to pushes to main/develop",
        "job deploy is not limited to pushes to main/develop",
        "does not map develop -> dev and main -> prod",
        "job deploy may cancel a run in progress",
        "workflow cancel-in-progress is 'true'",
        "job deploy does not use azure/login",
        "runs `cargo clippy` inline; call scripts/lint.sh",
        "runs `kubectl apply` inline; call scripts/deploy.sh",
        "runs `spin registry push` inline",
    ):
        assert expected in out, expected


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["jobs"]["deploy"].pop("concurrency"), "job deploy has no concurrency group"),
        (lambda d: d["jobs"]["test"]["env"].pop("E2E_RUNTIME"), "E2E_RUNTIME=spin"),
        (lambda d: d["jobs"]["test"].pop("services"), "no Redis service container"),
        (lambda d: d["jobs"]["deploy"].update(needs="test"), "job deploy does not need push"),
        (lambda d: d["on"].pop("pull_request"), "not triggered on `pull_request`"),
        (lambda d: d["on"]["push"].update(branches=["main", "develop"]), "Build and Test must run on every push"),
        (lambda d: d["jobs"]["deploy"].update(environment="prod"), "does not map develop -> dev"),
        (lambda d: d["jobs"]["test"].update(steps=[s for s in d["jobs"]["test"]["steps"] if s.get("id") != "artifact"]),
         "job test does not run scripts/check-artifact.sh"),
        (lambda d: d["jobs"]["test"].pop("outputs"), "job test has no output `digest` from its artifact check"),
        (lambda d: d["jobs"]["push"]["steps"][-1]["env"].pop("ARTIFACT_EXPECT_DIGEST"),
         "job push does not set ARTIFACT_EXPECT_DIGEST from needs.test.outputs.digest"),
    ],
)
def test_rejects_pipeline_mutations(mutate, expected):
    doc = copy.deepcopy(real_pipeline())
    mutate(doc)
    assert expected in pipeline_findings(doc)


def test_rejects_deploy_of_an_overlay_the_checks_do_not_know(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    text = (ROOT / wc.DEPLOY_SCRIPT).read_text().replace("kubernetes/overlays/$env", "k8s/$env")
    (root / wc.DEPLOY_SCRIPT).write_text(text)
    out = messages(wc.check_deploy_overlays(root))
    assert "scripts/deploy.sh: does not build kubernetes/overlays/<env>" in out
    assert "kubernetes/overlays/prod: deployed by CI but has no kustomization.yaml" in out
    assert "scripts/check-kubernetes.sh: missing" in out


# --- Terraform workflow and Dependabot ---------------------------------------


def test_rejects_ungated_terraform():
    path = FIXTURES / "terraform-ungated.yml"
    out = messages(wc.check_terraform_workflow(path.name, wc.load_yaml(path))) + fixture_findings(path.name)
    for expected in (
        "no `pull_request` trigger on paths under terraform/",
        "no plan job running `terraform plan`",
        "apply is not limited to pushes to main",
        "apply has no `environment:`",
        "runs Terraform without ARM_USE_OIDC=true",
        "ARM_CLIENT_ID is not taken from `vars`",
        "Terraform runs may be cancelled",
        "marker 'arm_client_secret'",
    ):
        assert expected in out, expected


def test_rejects_terraform_plan_that_can_write_or_leak_the_state():
    path = FIXTURES / "terraform-plan-leaks.yml"
    out = messages(wc.check_terraform_workflow(path.name, wc.load_yaml(path)))
    assert "the plan job takes the state lock; plan with -lock=false" in out
    assert "the saved plan (it holds the state's secrets) is uploaded as an artifact" in out


def test_rejects_dependabot_without_ecosystems():
    path = FIXTURES / "dependabot-missing-ecosystems.yml"
    out = messages(wc.check_dependabot(path.name, wc.load_yaml(path)))
    assert "no Dependabot updates for github-actions" in out
    assert "no Dependabot updates for terraform" in out


def test_rejects_an_overlay_patch_that_deploy_does_not_apply(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "kubernetes", root / "kubernetes")
    (root / "scripts").mkdir()
    text = (ROOT / wc.DEPLOY_SCRIPT).read_text().replace('    "prod:api:overlays/prod/api-zone-spread-patch.yaml"\n', "")
    (root / wc.DEPLOY_SCRIPT).write_text(text)
    out = messages(wc.check_deploy_overlays(root))
    assert "kubernetes/overlays/prod/api-zone-spread-patch.yaml: is not used by the kustomization and " \
        "scripts/deploy.sh does not apply it" in out
    # The overlays' own files (kustomization.yaml, terraform-outputs.env) are not patches.
    assert "terraform-outputs" not in out and "kubernetes/overlays/dev" not in out


# --- scripts/deploy.sh (dry run, no cluster) ---------------------------------

needs_kubectl = pytest.mark.skipif(not (VENV_TOOLS / "kubectl").exists(), reason="run scripts/bootstrap.sh")


def run_deploy(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEPLOY_DRY_RUN="1")
    env.pop("AKS_CLUSTER_NAME", None)
    return subprocess.run(
        [str(ROOT / wc.DEPLOY_SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@needs_kubectl
@pytest.mark.parametrize(
    "image",
    ["example.azurecr.io/jobs-platform:0123abc", "example.azurecr.io/jobs-platform@sha256:" + "ab" * 32],
)
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deploy_sets_the_image_on_both_spin_apps(env, image):
    result = run_deploy(env, image)
    assert result.returncode == 0, result.stderr
    apps = {
        d["metadata"]["name"]: d["spec"]["image"]
        for d in yaml.safe_load_all(result.stdout)
        if d and d.get("kind") == "SpinApp"
    }
    assert apps.get("api") == image and apps.get("worker") == image, apps


@needs_kubectl
def test_deploy_rejects_bad_arguments():
    assert "not an image reference with a registry" in run_deploy("dev", "jobs-platform").stderr
    assert "unknown environment or command: staging" in run_deploy("staging", "x.io/a:b").stderr


# --- scripts/smoke.sh against a stub API --------------------------------------


class StubApi(http.server.BaseHTTPRequestHandler):
    """Just enough of the job API for the smoke test; `outcome` picks the job's fate."""

    outcome = "succeeded"
    polls = 0
    # The public edge routes no operator path; with admin_routed it does (and the api asks for the token).
    admin_routed = False

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def reply(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self) -> bool:
        if self.headers.get("Authorization") != "Bearer smoke-key":
            self.reply(401, b'{"title":"unauthorized"}')
            return False
        return True

    def do_GET(self):  # noqa: N802 - http.server naming
        if self.path == "/healthz":
            return self.reply(200, b"ok", "text/plain")
        if self.path == "/api/v1/openapi.json":
            return self.reply(200, b'{"openapi":"3.1.0"}')
        if self.path.startswith("/api/v1/admin") and not self.admin_routed:
            return self.reply(404, b"", "text/html")
        if not self.authorized():
            return None
        if self.path == "/api/v1/jobs/j1":
            type(self).polls += 1
            status = "running" if self.polls < 2 else self.outcome
            return self.reply(200, json.dumps({"id": "j1", "status": status}).encode())
        if self.path == "/api/v1/jobs/j1/result":
            return self.reply(200, b'{"words":2,"characters":11}')
        return self.reply(404, b"{}")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if not self.authorized():
            return
        if self.path != "/api/v1/jobs" or body.get("type") != "text-stats":
            self.reply(422, b"{}")
            return
        self.reply(202, b'{"id":"j1","status":"queued"}')


@pytest.fixture()
def stub_api():
    servers = []

    def start(outcome: str, admin_routed: bool = False) -> str:
        handler = type("Handler", (StubApi,), {"outcome": outcome, "polls": 0, "admin_routed": admin_routed})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def run_smoke(url: str, key: str = "smoke-key", **extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SMOKE_API_KEY=key, SMOKE_TIMEOUT="20", SMOKE_CURL_TIMEOUT="5", **extra)
    return subprocess.run(
        [str(ROOT / "scripts" / "smoke.sh"), url], env=env, capture_output=True, text=True, timeout=60
    )


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is required")


@needs_curl
def test_smoke_passes_against_a_working_api(stub_api):
    result = run_smoke(stub_api("succeeded"))
    assert result.returncode == 0, result.stderr
    assert "job j1 succeeded" in result.stderr and "PASS" in result.stderr


@needs_curl
def test_smoke_fails_on_a_failed_job(stub_api):
    result = run_smoke(stub_api("failed"))
    assert result.returncode == 1
    assert "FAIL: job j1 failed" in result.stderr


@needs_curl
def test_smoke_fails_on_a_wrong_key(stub_api):
    result = run_smoke(stub_api("succeeded"), key="wrong")
    assert result.returncode == 1
    assert "POST /api/v1/jobs answered 401" in result.stderr


# --- scripts/deploy.sh against stub az, spin and kubectl ----------------------

STUB_AZ = """#!/bin/sh
echo '{"accessToken":"token","loginServer":"example.azurecr.io"}'
"""

STUB_SPIN = """#!/bin/sh
echo "spin $*" >>"$STUB_LOG"
case "$1 $2" in
  "registry login") cat >/dev/null ;;
  "registry push") echo "Pushed with digest sha256:%s" ;;
esac
""" % ("cd" * 32)

# Builds with the real kubectl, records applies (in apply order, dry runs
# marked) and patches, and reports every Deployment and SpinApp as rolled out
# with the image last applied. A server-side dry run of SpinApps fails like
# spin-operator's webhook until an executor has been applied, and for the
# first STUB_WEBHOOK_LAG tries (its cache lagging). With STUB_PATCH_FAIL=1 a
# patch fails as it would on a missing Deployment.
STUB_KUBECTL = """#!/bin/sh
echo "kubectl $*" >>"$STUB_LOG"
case "$1" in
  kustomize) exec "$REAL_KUBECTL" "$@" ;;
  apply)
    for last; do :; done
    kinds="$(sed -n 's/^kind: //p' "$last" | sort -u | tr '\\n' ' ')"
    case "$*" in
      *--dry-run=server*)
        echo "dry-run $kinds" >>"$STUB_LOG.order"
        if grep -q '^kind: SpinApp$' "$last"; then
          tries=$(( $(cat "$STUB_LOG.webhook" 2>/dev/null || echo 0) + 1 ))
          echo "$tries" >"$STUB_LOG.webhook"
          if ! grep -q '^apply .*SpinAppExecutor' "$STUB_LOG.order" || [ "$tries" -le "${STUB_WEBHOOK_LAG:-0}" ]; then
            echo 'Error from server (Forbidden): admission webhook denied the request: executor does not exist in namespace' >&2
            exit 1
          fi
        fi ;;
      *) echo "apply $kinds" >>"$STUB_LOG.order"; cat "$last" >>"$STUB_LOG.applied" ;;
    esac
    exit 0 ;;
esac
case "$*" in
  *" patch deployment "*)
    if [ "${STUB_PATCH_FAIL:-0}" = 1 ]; then
      echo 'Error from server (NotFound): deployments.apps "api" not found' >&2; exit 1
    fi
    for last; do :; done
    cat "$last" >>"$STUB_LOG.patches"
    echo "deployment.apps/api patched" ;;
  *"get deployment"*) echo "$STUB_IMAGE" ;;
  *"rollout status"*) echo "deployment successfully rolled out" ;;
  *"get spinapp"*) echo 1 ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


def stub_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("az", STUB_AZ), ("spin", STUB_SPIN), ("kubectl", STUB_KUBECTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_push_tags_and_reports_the_digest(tmp_path):
    bin_dir = stub_bin(tmp_path)
    log, out = tmp_path / "log", tmp_path / "github-output"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log), GITHUB_OUTPUT=str(out))
    result = subprocess.run(
        [str(ROOT / wc.DEPLOY_SCRIPT), "push", "example", "jobs-platform", "0123abc", "v1.2.3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    image = "example.azurecr.io/jobs-platform@sha256:" + "cd" * 32
    assert result.stdout.strip() == image
    assert out.read_text() == f"image={image}\n"
    calls = log.read_text()
    assert "registry login --username 00000000-0000-0000-0000-000000000000 --password-stdin example.azurecr.io" in calls
    # Through scripts/push-artifact.sh: every tag with one created annotation, so they name one manifest.
    assert re.search(r"registry push --annotation org\.opencontainers\.image\.created=\S+ "
                     r"example\.azurecr\.io/jobs-platform:0123abc\n", calls)
    assert re.search(r"registry push --annotation org\.opencontainers\.image\.created=\S+ "
                     r"example\.azurecr\.io/jobs-platform:v1\.2\.3\n", calls)


def run_stubbed_deploy(tmp_path: Path, env_name: str, **extra: str) -> subprocess.CompletedProcess:
    bin_dir = stub_bin(tmp_path)
    image = "example.azurecr.io/jobs-platform@sha256:" + "cd" * 32
    env = dict(
        os.environ,
        KUBECTL=str(bin_dir / "kubectl"),
        REAL_KUBECTL=str(VENV_TOOLS / "kubectl"),
        STUB_LOG=str(tmp_path / "log"),
        STUB_IMAGE=image,
        DEPLOY_TIMEOUT="30",
    )
    for key in ("DEPLOY_DRY_RUN", "AKS_CLUSTER_NAME", "AKS_RESOURCE_GROUP", "STUB_PATCH_FAIL", "GITHUB_OUTPUT",
                "DEPLOY_ATTEMPTS", "DEPLOY_RETRY_DELAY", "STUB_WEBHOOK_LAG"):
        env.pop(key, None)
    env.update(extra)
    return subprocess.run(
        [str(ROOT / wc.DEPLOY_SCRIPT), env_name, image], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )


ZONE_SPREAD_PATCH = ROOT / "kubernetes" / "overlays" / "prod" / "api-zone-spread-patch.yaml"


@needs_kubectl
def test_deploy_applies_server_side_and_waits(tmp_path):
    result = run_stubbed_deploy(tmp_path, "prod")
    log = tmp_path / "log"
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert "apply --server-side --force-conflicts --field-manager=jobs-platform-deploy -f" in calls
    for app in ("api", "worker"):
        assert f"rollout status deployment/{app}" in calls
    applied = [d for d in yaml.safe_load_all((tmp_path / "log.applied").read_text()) if d]
    assert {d["metadata"]["name"] for d in applied if d["kind"] == "SpinApp"} >= {"api", "worker"}


@needs_kubectl
def test_deploy_applies_namespaces_then_the_executor_then_the_rest(tmp_path):
    result = run_stubbed_deploy(tmp_path, "dev")
    assert result.returncode == 0, result.stderr
    order = (tmp_path / "log.order").read_text().splitlines()
    assert order[0].split() == ["apply", "Namespace"]
    assert order[1].split() == ["apply", "SpinAppExecutor"]
    # The webhook accepts the SpinApps before the phase that holds them goes in.
    assert order[2].split() == ["dry-run", "SpinApp"]
    assert order[3].startswith("apply ") and "SpinApp" in order[3].split() and "HTTPRoute" in order[3].split()
    assert len(order) == 4


@needs_kubectl
def test_deploy_waits_until_the_webhook_sees_the_executor(tmp_path):
    result = run_stubbed_deploy(tmp_path, "dev", STUB_WEBHOOK_LAG="2", DEPLOY_RETRY_DELAY="0")
    assert result.returncode == 0, result.stderr
    order = (tmp_path / "log.order").read_text().splitlines()
    assert [line.split()[0] for line in order[2:]] == ["dry-run", "dry-run", "dry-run", "apply"]
    assert "server-side dry run of the SpinApps: attempt 2 of 12 failed" in result.stderr


@needs_kubectl
def test_deploy_gives_up_after_a_bounded_number_of_tries(tmp_path):
    result = run_stubbed_deploy(tmp_path, "dev", STUB_WEBHOOK_LAG="100", DEPLOY_ATTEMPTS="3",
                                DEPLOY_RETRY_DELAY="0")
    assert result.returncode != 0
    order = (tmp_path / "log.order").read_text().splitlines()
    # Namespaces and executor went in, the SpinApps' phase never did.
    assert order == ["apply Namespace ", "apply SpinAppExecutor ", "dry-run SpinApp ", "dry-run SpinApp ",
                     "dry-run SpinApp "]
    assert "failed 3 times" in result.stderr and "deployed " not in result.stderr


@needs_kubectl
def test_deploy_reports_the_host_of_the_built_route(tmp_path):
    out = tmp_path / "github-output"
    result = run_stubbed_deploy(tmp_path, "prod", GITHUB_OUTPUT=str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "host=api.jobs.example.com\ntls_issuer=letsencrypt-staging\n"


@needs_kubectl
def test_prod_deploy_patches_the_api_zone_spread_after_the_spin_apps_are_ready(tmp_path):
    result = run_stubbed_deploy(tmp_path, "prod")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "log").read_text().splitlines()
    patch = "kubectl -n jobs-platform patch deployment api --type strategic --field-manager=jobs-platform-deploy " \
        "--patch-file "
    patches = [i for i, c in enumerate(calls) if c.startswith(patch)]
    assert len(patches) == 1, calls
    assert calls[patches[0]].endswith("/kubernetes/overlays/prod/api-zone-spread-patch.yaml")
    # After both SpinApps are ready, then the rollout it causes is awaited.
    last_wait = max(i for i, c in enumerate(calls) if "get spinapp worker" in c or "get spinapp api" in c)
    assert patches[0] > last_wait
    assert any("rollout status deployment/api" in c for c in calls[patches[0] + 1:])
    # The patch sent is the repository's file, unchanged.
    assert (tmp_path / "log.patches").read_text() == ZONE_SPREAD_PATCH.read_text()
    assert "patch deployment api (overlays/prod/api-zone-spread-patch.yaml)" in result.stderr


@needs_kubectl
def test_prod_deploy_can_run_again(tmp_path):
    first = run_stubbed_deploy(tmp_path, "prod")
    (tmp_path / "bin").rename(tmp_path / "bin-first")
    second = run_stubbed_deploy(tmp_path, "prod")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    # The same patch each time: a strategic merge that sets, never appends.
    text = ZONE_SPREAD_PATCH.read_text()
    assert (tmp_path / "log.patches").read_text() == text + text


def test_zone_spread_patch_is_idempotent_as_a_strategic_merge():
    """topologySpreadConstraints merge on (topologyKey, whenUnsatisfiable), so re-applying replaces in place."""
    patch = yaml.safe_load(ZONE_SPREAD_PATCH.read_text())
    assert set(patch) == {"spec"}
    constraints = patch["spec"]["template"]["spec"]["topologySpreadConstraints"]
    keys = [(c["topologyKey"], c["whenUnsatisfiable"]) for c in constraints]
    assert len(keys) == len(set(keys))
    # Nothing else in the pod template: the patch must not fight spin-operator's fields.
    assert set(patch["spec"]["template"]["spec"]) == {"topologySpreadConstraints"}


@needs_kubectl
def test_dev_deploy_patches_nothing(tmp_path):
    result = run_stubbed_deploy(tmp_path, "dev")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "log").read_text()
    assert " patch " not in calls
    assert "rollout status deployment/api" in calls


@needs_kubectl
def test_deploy_fails_when_the_patch_fails(tmp_path):
    result = run_stubbed_deploy(tmp_path, "prod", STUB_PATCH_FAIL="1")
    assert result.returncode != 0
    assert 'deployments.apps "api" not found' in result.stderr
    assert "deployed " not in result.stderr


@needs_kubectl
def test_dry_run_names_the_patch_and_applies_nothing(tmp_path):
    result = run_stubbed_deploy(tmp_path, "prod", DEPLOY_DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "SpinApp"} == {"api", "worker"}
    assert (
        "would patch deployment api with kubernetes/overlays/prod/api-zone-spread-patch.yaml" in result.stderr
    )
    calls = (tmp_path / "log").read_text()
    assert " apply " not in calls and " patch " not in calls and "rollout" not in calls


@needs_kubectl
def test_deploy_refuses_to_start_without_its_patch_file(tmp_path):
    """A missing patch file stops the deploy before anything is applied."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(ROOT / "kubernetes", copy / "kubernetes")
    (copy / "kubernetes" / "overlays" / "prod" / "api-zone-spread-patch.yaml").unlink()
    bin_dir = stub_bin(tmp_path)
    env = dict(os.environ, KUBECTL=str(bin_dir / "kubectl"), REAL_KUBECTL=str(VENV_TOOLS / "kubectl"),
               STUB_LOG=str(tmp_path / "log"), VENV_DIR=str(ROOT / ".venv"))
    env.pop("DEPLOY_DRY_RUN", None)
    result = subprocess.run(
        [str(copy / "scripts" / "deploy.sh"), "prod", "example.azurecr.io/jobs-platform:0123abc"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "patch for deployment api not found: kubernetes/overlays/prod/api-zone-spread-patch.yaml" in result.stderr
    assert " apply " not in (tmp_path / "log").read_text()


@needs_curl
def test_smoke_as_ci_runs_it_through_the_public_gateway(stub_api):
    result = run_smoke(stub_api("succeeded"), SMOKE_UNPUBLISHED_PATHS="/api/v1/admin/dead-letters")
    assert result.returncode == 0, result.stderr
    assert "/healthz 200" in result.stderr and "/api/v1/admin/dead-letters not published (404)" in result.stderr


@needs_curl
def test_smoke_fails_when_an_operator_route_is_published(stub_api):
    result = run_smoke(stub_api("succeeded", admin_routed=True), SMOKE_UNPUBLISHED_PATHS="/api/v1/admin/dead-letters")
    assert result.returncode == 1
    assert "FAIL: /api/v1/admin/dead-letters answered 401: it must not be routed" in result.stderr


STUB_TERRAFORM = """#!/bin/sh
echo "terraform $*" >>"$STUB_LOG"
cat "$STUB_OUTPUTS"
"""


def run_outputs(tmp_path: Path, outputs: dict) -> tuple[subprocess.CompletedProcess, Path]:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(ROOT / "kubernetes", copy / "kubernetes")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(STUB_TERRAFORM)
    (bin_dir / "terraform").chmod(0o755)
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(tmp_path / "log"),
               STUB_OUTPUTS=str(tmp_path / "outputs.json"), VENV_DIR=str(ROOT / ".venv"))
    result = subprocess.run([str(copy / "scripts" / "deploy.sh"), "outputs", "dev"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=60)
    return result, copy / "kubernetes" / "overlays" / "dev" / "terraform-outputs.env"


def test_outputs_writes_every_value_the_overlay_uses(tmp_path):
    before = (ROOT / "kubernetes/overlays/dev/terraform-outputs.env").read_text()
    names = [line.split("=", 1)[0] for line in before.splitlines() if line and not line.startswith("#")]
    outputs = {n: {"sensitive": False, "value": f"value-of-{n}"} for n in names}
    outputs["redis_port"] = {"sensitive": False, "value": 10000}
    outputs["github_actions_client_id"] = {"sensitive": False, "value": "not-for-the-overlay"}
    result, written = run_outputs(tmp_path, outputs)
    assert result.returncode == 0, result.stderr
    values = dict(line.split("=", 1) for line in written.read_text().splitlines() if not line.startswith("#"))
    assert sorted(values) == sorted(names)
    assert values["redis_port"] == "10000" and values["edge_fqdn"] == "value-of-edge_fqdn"
    assert "terraform -chdir=" in (tmp_path / "log").read_text()


def test_outputs_refuses_a_state_without_the_edge(tmp_path):
    before = (ROOT / "kubernetes/overlays/dev/terraform-outputs.env").read_text()
    names = [line.split("=", 1)[0] for line in before.splitlines() if line and not line.startswith("#")]
    outputs = {n: {"sensitive": False, "value": "x"} for n in names if not n.startswith("edge_")}
    result, written = run_outputs(tmp_path, outputs)
    assert result.returncode != 0
    assert "terraform output lacks edge_public_ip_name" in result.stderr
    assert written.read_text() == before
