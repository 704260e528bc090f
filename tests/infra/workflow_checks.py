"""Project checks for the GitHub Actions side of the platform.

What actionlint and zizmor cannot know about this project:

* the CI/CD workflow has the four stages with their triggers (build and test on
  every push and pull request; push and deploy only on pushes to main/develop,
  develop -> dev, main -> prod through a GitHub Environment), and its commands
  come from scripts/;
* every ``uses:`` is pinned to a full 40-hex commit SHA with the version in a
  trailing comment;
* ``permissions`` is ``contents: read`` at the top and ``id-token: write`` only
  on jobs that sign in to Azure;
* Azure sign-in is OIDC only: ``azure/login`` with client-id, tenant-id and
  subscription-id from ``vars``, never ``creds`` or a client secret;
* concurrency: CI cancels superseded pull-request runs, never a run that
  pushes or deploys; deploy and Terraform jobs queue (never cancel);
* the Terraform workflow plans on pull requests touching terraform/ and applies
  on main through an environment, with OIDC for the azurerm backend/provider;
* the test job runs scripts/check-artifact.sh and passes on the digest it
  checked; the push job makes ACR's push fail on any other digest;
* the deploy job runs scripts/deploy.sh, which applies kubernetes/overlays/<env>,
  the overlays scripts/check-kubernetes.sh validates;
* Dependabot covers cargo, github-actions and terraform.

Run ``python tests/infra/workflow_checks.py [--root DIR]``: prints every
finding and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

PIPELINE = ".github/workflows/ci-cd.yml"
TERRAFORM = ".github/workflows/terraform.yml"
DEPENDABOT = ".github/dependabot.yml"
DEPLOY_SCRIPT = "scripts/deploy.sh"
ARTIFACT_CHECK = "scripts/check-artifact.sh"
KUBERNETES_CHECK = "scripts/check-kubernetes.sh"
DEPLOY_ENVIRONMENTS = {"refs/heads/develop": "dev", "refs/heads/main": "prod"}

SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
VERSION_COMMENT = re.compile(r"\bv?\d+(\.\d+)*\b")
# Commands that belong in scripts/, not inline in a workflow.
INLINE_COMMANDS = {
    "cargo fmt": "scripts/lint.sh",
    "cargo clippy": "scripts/lint.sh",
    "cargo test": "scripts/test-unit.sh",
    "kubectl apply": "scripts/deploy.sh",
    "kubectl kustomize": "scripts/deploy.sh",
    "spin registry push": "scripts/deploy.sh push",
}
SECRET_LOGIN_MARKERS = (
    "client-secret",
    "clientsecret",
    "arm_client_secret",
    "azure_credentials",
    "--password",
    "service-principal",
)


@dataclass(frozen=True)
class Finding:
    """One problem: the file it is in and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps `on:` as the string "on" (YAML 1.1 reads it as True)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    """Parse a workflow, action or Dependabot file."""
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _jobs(doc: dict) -> dict[str, dict]:
    jobs = doc.get("jobs") or {}
    return {k: v for k, v in jobs.items() if isinstance(v, dict)}


def _steps(container: dict) -> list[dict]:
    steps = container.get("steps") or []
    return [s for s in steps if isinstance(s, dict)]


def _run_text(container: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(container))


def _needs(job: dict) -> set[str]:
    needs = job.get("needs") or []
    return {needs} if isinstance(needs, str) else set(needs)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true"


# --- checks on any workflow or action file -----------------------------------


def check_pins(rel: str, text: str) -> list[Finding]:
    """Every remote `uses:` is owner/repo[/path]@<40-hex SHA> # <version>."""
    findings = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = USES_LINE.match(line)
        if not m:
            continue
        ref = m["ref"].strip("'\"")
        if ref.startswith("./") or ref.startswith("docker://"):
            if ref.startswith("docker://") and "@sha256:" not in ref:
                findings.append(Finding(rel, f"line {lineno}: docker action {ref!r} is not pinned by digest"))
            continue
        if not SHA_PIN.match(ref):
            findings.append(
                Finding(rel, f"line {lineno}: `uses: {ref}` is not pinned to a full 40-hex commit SHA")
            )
        elif not (m["comment"] and VERSION_COMMENT.search(m["comment"])):
            findings.append(
                Finding(rel, f"line {lineno}: `uses: {ref}` has no `# vX.Y.Z` version comment")
            )
    return findings


def check_azure_login(rel: str, doc: dict, text: str) -> list[Finding]:
    """azure/login only with OIDC inputs from vars; no secret-based login anywhere."""
    findings = []
    lowered = text.lower()
    for marker in SECRET_LOGIN_MARKERS:
        if marker in lowered:
            findings.append(Finding(rel, f"secret-based Azure sign-in marker {marker!r} found"))
    containers = list(_jobs(doc).values()) if "jobs" in doc else [doc.get("runs") or {}]
    for container in containers:
        for step in _steps(container):
            uses = str(step.get("uses", ""))
            if not uses.lower().startswith("azure/login@"):
                continue
            with_ = step.get("with") or {}
            if "creds" in with_:
                findings.append(Finding(rel, "azure/login uses `creds` (a client secret): use OIDC"))
            for key in ("client-id", "tenant-id", "subscription-id"):
                value = str(with_.get(key, ""))
                if not value:
                    findings.append(Finding(rel, f"azure/login has no `{key}`"))
                elif "secrets." in value:
                    findings.append(
                        Finding(rel, f"azure/login `{key}` comes from a secret; use `vars.` (it is not one)")
                    )
    return findings


def check_permissions(rel: str, doc: dict) -> list[Finding]:
    """Top-level read-only permissions; id-token: write only where Azure OIDC is used."""
    findings = []
    top = doc.get("permissions")
    if top is None:
        findings.append(Finding(rel, "no top-level `permissions:` (want `contents: read`)"))
    elif top != {} and top != {"contents": "read"}:
        findings.append(Finding(rel, f"top-level permissions are {top!r}, want `contents: read`"))
    for name, job in _jobs(doc).items():
        perms = job.get("permissions")
        if perms in ("write-all", "read-all"):
            findings.append(Finding(rel, f"job {name}: `permissions: {perms}`"))
            continue
        if not isinstance(perms, dict) or perms.get("id-token") != "write":
            continue
        uses_oidc = any(
            str(s.get("uses", "")).lower().startswith("azure/login@") for s in _steps(job)
        ) or _truthy((job.get("env") or {}).get("ARM_USE_OIDC"))
        if not uses_oidc:
            findings.append(Finding(rel, f"job {name}: `id-token: write` but no Azure OIDC sign-in"))
    return findings


def check_inline_commands(rel: str, doc: dict) -> list[Finding]:
    """The commands live in scripts/ (shared with .ci/run and the README)."""
    findings = []
    for name, job in _jobs(doc).items():
        run = _run_text(job)
        for command, script in INLINE_COMMANDS.items():
            if command in run:
                findings.append(Finding(rel, f"job {name}: runs `{command}` inline; call {script}"))
    return findings


def check_file(root: Path, path: Path) -> list[Finding]:
    """All generic checks for one workflow or composite action file."""
    rel = _rel(root, path)
    text = path.read_text(encoding="utf-8")
    try:
        doc = load_yaml(path)
    except yaml.YAMLError as e:
        return [Finding(rel, f"not valid YAML: {e}")]
    if not isinstance(doc, dict):
        return [Finding(rel, "not a YAML mapping")]
    findings = check_pins(rel, text) + check_azure_login(rel, doc, text)
    if "jobs" in doc:
        findings += check_permissions(rel, doc) + check_inline_commands(rel, doc)
    return findings


# --- the CI/CD pipeline ------------------------------------------------------


def _triggers(doc: dict) -> dict:
    on = doc.get("on")
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {t: {} for t in on}
    return {k: (v or {}) for k, v in (on or {}).items()}


def _branch_only_condition(cond: str) -> bool:
    """Whether an `if:` limits a job to push events on main/develop."""
    c = " ".join(cond.split())
    return (
        "github.event_name == 'push'" in c
        and "refs/heads/main" in c
        and "refs/heads/develop" in c
    )


def check_pipeline(rel: str, doc: dict, root: Path) -> list[Finding]:
    """Four stages, their triggers and wiring, and the deploy contract."""
    findings: list[Finding] = []
    on = _triggers(doc)
    push = on.get("push")
    if push is None:
        findings.append(Finding(rel, "not triggered on `push`"))
    else:
        branches = set(push.get("branches") or [])
        if push.get("branches-ignore") or push.get("paths") or push.get("paths-ignore"):
            findings.append(Finding(rel, "`push` trigger is filtered: Build and Test must run on every push"))
        elif "tags" in push and not branches:
            findings.append(Finding(rel, "`push` trigger lists only tags: Build and Test must run on every push"))
        elif branches and "**" not in branches:
            findings.append(
                Finding(rel, f"`push` trigger only on branches {sorted(branches)}: Build and Test must run on every push")
            )
    if "pull_request" not in on:
        findings.append(Finding(rel, "not triggered on `pull_request`"))
    elif (on["pull_request"] or {}).get("paths") or (on["pull_request"] or {}).get("branches"):
        findings.append(Finding(rel, "`pull_request` trigger is filtered: Build and Test must run on every PR"))
    if "pull_request_target" in on:
        findings.append(Finding(rel, "`pull_request_target` runs untrusted code with secrets"))

    jobs = _jobs(doc)
    for stage in ("build", "test", "push", "deploy"):
        if stage not in jobs:
            findings.append(Finding(rel, f"no `{stage}` job (stage {stage.title()})"))
    if findings and any("job (stage" in f.message for f in findings):
        return findings
    build, test, push_job, deploy = (jobs[s] for s in ("build", "test", "push", "deploy"))

    # Build and Test: every push and PR, no branch condition.
    for name, job in (("build", build), ("test", test)):
        if "if" in job:
            findings.append(Finding(rel, f"job {name} has an `if:`; it must run on every push and PR"))
    build_run = _run_text(build)
    for needle, what in (
        ("scripts/lint.sh", "cargo fmt --check and clippy -D warnings (scripts/lint.sh)"),
        ("spin build", "`spin build`"),
        ("scripts/check-terraform.sh", "the Terraform checks"),
        ("scripts/check-kubernetes.sh", "the Kubernetes checks"),
        ("scripts/check-workflows.sh", "the workflow checks"),
    ):
        if needle not in build_run:
            findings.append(Finding(rel, f"job build does not run {what}"))
    spin_setup = any(
        "spin/setup@" in str(s.get("uses", "")) or s.get("uses") == "./.github/actions/setup-toolchain"
        for s in _steps(build)
    )
    if not spin_setup:
        findings.append(Finding(rel, "job build does not install the Spin CLI with the pinned setup action"))

    if "build" not in _needs(test):
        findings.append(Finding(rel, "job test does not need build"))
    test_run = _run_text(test)
    for needle in ("scripts/test-unit.sh", "scripts/test-e2e.sh"):
        if needle not in test_run:
            findings.append(Finding(rel, f"job test does not run {needle}"))
    if ARTIFACT_CHECK not in test_run:
        findings.append(Finding(rel, f"job test does not run {ARTIFACT_CHECK} (push to a registry, run the digest)"))
    elif "steps.artifact.outputs.digest" not in str((test.get("outputs") or {}).get("digest", "")):
        findings.append(Finding(rel, "job test has no output `digest` from its artifact check (step id `artifact`)"))
    if str((test.get("env") or {}).get("E2E_RUNTIME")) != "spin":
        findings.append(Finding(rel, "job test does not set E2E_RUNTIME=spin (end-to-end on `spin up`)"))
    services = test.get("services") or {}
    if not any("redis" in str(s.get("image", "")) for s in services.values() if isinstance(s, dict)):
        findings.append(Finding(rel, "job test has no Redis service container"))
    if "azurite" not in yaml.safe_dump(test).lower():
        findings.append(Finding(rel, "job test does not start Azurite"))

    # Push: after both, only on main/develop pushes; spin registry push via scripts.
    if "test" not in _needs(push_job):
        findings.append(Finding(rel, "job push does not need test"))
    if not _branch_only_condition(str(push_job.get("if", ""))):
        findings.append(Finding(rel, "job push is not limited to pushes to main/develop"))
    if "scripts/deploy.sh push" not in _run_text(push_job):
        findings.append(Finding(rel, "job push does not run `scripts/deploy.sh push` (spin registry push)"))
    push_env = {k: v for st in _steps(push_job) if "scripts/deploy.sh push" in str(st.get("run", ""))
                for k, v in (st.get("env") or {}).items()}
    if "needs.test.outputs.digest" not in str(push_env.get("ARTIFACT_EXPECT_DIGEST", "")):
        findings.append(Finding(rel, "job push does not set ARTIFACT_EXPECT_DIGEST from needs.test.outputs.digest: "
                                     "ACR could get an artifact other than the tested one"))
    if "GITHUB_SHA" not in _run_text(push_job) and "github.sha" not in yaml.safe_dump(push_job):
        findings.append(Finding(rel, "job push does not tag the app with the commit SHA"))

    # Deploy: after push, main/develop only, environment per branch, queued.
    if "push" not in _needs(deploy):
        findings.append(Finding(rel, "job deploy does not need push"))
    if not _branch_only_condition(str(deploy.get("if", ""))):
        findings.append(Finding(rel, "job deploy is not limited to pushes to main/develop"))
    env = deploy.get("environment")
    env_name = str(env.get("name", "")) if isinstance(env, dict) else str(env or "")
    compact = env_name.replace(" ", "")
    if not (
        "github.ref=='refs/heads/main'&&'prod'||'dev'" in compact
        or "github.ref=='refs/heads/develop'&&'dev'||'prod'" in compact
    ):
        findings.append(
            Finding(rel, f"job deploy environment {env_name!r} does not map develop -> dev and main -> prod")
        )
    findings += _check_queued(rel, "deploy", deploy.get("concurrency"))
    cancel = str((doc.get("concurrency") or {}).get("cancel-in-progress", "false"))
    protected = all(ref in cancel for ref in ("refs/heads/main", "refs/heads/develop", "refs/tags/"))
    if cancel.strip().lower() == "true" or (
        cancel.strip().lower() != "false" and "pull_request" not in cancel and not protected
    ):
        findings.append(
            Finding(rel, f"workflow cancel-in-progress is {cancel!r}: it may cancel a push or deploy run")
        )
    deploy_run = _run_text(deploy)
    if "scripts/deploy.sh" not in deploy_run:
        findings.append(Finding(rel, "job deploy does not run scripts/deploy.sh"))
    if "scripts/smoke.sh" not in deploy_run:
        findings.append(Finding(rel, "job deploy does not run scripts/smoke.sh"))
    deploy_uses = " ".join(str(s.get("uses", "")) for s in _steps(deploy))
    for action in ("azure/login@", "azure/use-kubelogin@"):
        if action not in deploy_uses:
            findings.append(Finding(rel, f"job deploy does not use {action.rstrip('@')}"))
    findings += check_deploy_overlays(root)
    return findings


def _check_queued(rel: str, name: str, concurrency: Any) -> list[Finding]:
    if not isinstance(concurrency, dict) or not concurrency.get("group"):
        return [Finding(rel, f"job {name} has no concurrency group (runs must queue)")]
    if str(concurrency.get("cancel-in-progress", "false")).strip().lower() != "false":
        return [Finding(rel, f"job {name} may cancel a run in progress; it must queue")]
    return []


def check_deploy_overlays(root: Path) -> list[Finding]:
    """scripts/deploy.sh applies kubernetes/overlays/<env>, the overlays the Kubernetes checks build."""
    findings = []
    deploy = root / DEPLOY_SCRIPT
    if not deploy.is_file():
        return [Finding(DEPLOY_SCRIPT, "missing")]
    text = deploy.read_text(encoding="utf-8")
    if "kubernetes/overlays/$env" not in text:
        findings.append(Finding(DEPLOY_SCRIPT, "does not build kubernetes/overlays/<env>"))
    if "apply --server-side" not in text:
        findings.append(Finding(DEPLOY_SCRIPT, "does not `kubectl apply --server-side`"))
    for env in sorted(set(DEPLOY_ENVIRONMENTS.values())):
        overlay = root / "kubernetes" / "overlays" / env
        if not (overlay / "kustomization.yaml").is_file():
            findings.append(Finding(f"kubernetes/overlays/{env}", "deployed by CI but has no kustomization.yaml"))
            continue
        # A manifest in the overlay that the kustomization does not use is a patch
        # for what spin-operator creates: the deploy script must apply it.
        kustomization = (overlay / "kustomization.yaml").read_text(encoding="utf-8")
        for path in sorted(overlay.glob("*.yaml")):
            if path.name == "kustomization.yaml" or path.name in kustomization:
                continue
            if f"overlays/{env}/{path.name}" not in text:
                findings.append(
                    Finding(f"kubernetes/overlays/{env}/{path.name}", "is not used by the kustomization and "
                            f"{DEPLOY_SCRIPT} does not apply it (add it to DEPLOYMENT_PATCHES)")
                )
    check = root / KUBERNETES_CHECK
    if not check.is_file():
        findings.append(Finding(KUBERNETES_CHECK, "missing: nothing validates the overlays CI deploys"))
    else:
        check_text = check.read_text(encoding="utf-8")
        checks_py = root / "tests" / "infra" / "kubernetes_checks.py"
        if checks_py.is_file():
            check_text += checks_py.read_text(encoding="utf-8")
        if "overlays" not in check_text:
            findings.append(Finding(KUBERNETES_CHECK, "does not validate kubernetes/overlays/*, which CI deploys"))
    return findings


# --- Terraform workflow and Dependabot --------------------------------------


def check_terraform_workflow(rel: str, doc: dict) -> list[Finding]:
    """Plan on PRs touching terraform/, apply on main through an environment, OIDC."""
    findings: list[Finding] = []
    on = _triggers(doc)
    pr = on.get("pull_request")
    if pr is None or not any(str(p).startswith("terraform/") for p in pr.get("paths") or []):
        findings.append(Finding(rel, "no `pull_request` trigger on paths under terraform/"))
    push = on.get("push")
    if push is None or "main" not in (push.get("branches") or []):
        findings.append(Finding(rel, "no `push` trigger on main"))
    jobs = _jobs(doc)
    plan = next((j for n, j in jobs.items() if "plan" in n), None)
    apply = next((j for n, j in jobs.items() if "apply" in n), None)
    if plan is None or "terraform plan" not in _run_text(plan):
        findings.append(Finding(rel, "no plan job running `terraform plan`"))
    if apply is None or "terraform apply" not in _run_text(apply):
        findings.append(Finding(rel, "no apply job running `terraform apply`"))
    if plan is not None:
        posted = "GITHUB_STEP_SUMMARY" in _run_text(plan) or any(
            "upload-artifact@" in str(s.get("uses", "")) for s in _steps(plan)
        )
        if not posted:
            findings.append(Finding(rel, "the plan is neither in the job summary nor an artifact"))
        # The plan identity reads the state but must not be able to write it,
        # and the saved plan (prior state, secrets included) is no artifact.
        if "terraform plan" in _run_text(plan) and "-lock=false" not in _run_text(plan):
            findings.append(Finding(rel, "the plan job takes the state lock; plan with -lock=false as a read-only identity"))
        for step in _steps(plan):
            if "upload-artifact@" in str(step.get("uses", "")):
                paths = str((step.get("with") or {}).get("path", "")).split()
                if any(p.rstrip("/").endswith("tfplan") for p in paths):
                    findings.append(Finding(rel, "the saved plan (it holds the state's secrets) is uploaded as an artifact"))
    if apply is not None:
        cond = " ".join(str(apply.get("if", "")).split())
        if "refs/heads/main" not in cond or "github.event_name == 'push'" not in cond:
            findings.append(Finding(rel, "apply is not limited to pushes to main"))
        if not apply.get("environment"):
            findings.append(Finding(rel, "apply has no `environment:` (no approval gate)"))
        if plan is not None and plan.get("environment") == apply.get("environment"):
            findings.append(Finding(rel, "plan and apply share an environment; apply needs its own gate"))
        if not any(n for n, j in jobs.items() if j is plan and n in _needs(apply)):
            findings.append(Finding(rel, "apply does not need the plan job"))
        findings += _check_queued(rel, "apply", apply.get("concurrency"))
    for name, job in jobs.items():
        env = job.get("env") or {}
        if "terraform " in _run_text(job):
            if not _truthy(env.get("ARM_USE_OIDC")):
                findings.append(Finding(rel, f"job {name}: runs Terraform without ARM_USE_OIDC=true"))
            for key in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID"):
                if "vars." not in str(env.get(key, "")):
                    findings.append(Finding(rel, f"job {name}: {key} is not taken from `vars`"))
    cancel = str((doc.get("concurrency") or {}).get("cancel-in-progress", "false")).strip().lower()
    if cancel != "false":
        findings.append(Finding(rel, "Terraform runs may be cancelled; they must queue"))
    return findings


def check_dependabot(rel: str, doc: dict) -> list[Finding]:
    """Dependabot updates cargo, github-actions and terraform."""
    ecosystems = {u.get("package-ecosystem") for u in (doc.get("updates") or []) if isinstance(u, dict)}
    return [
        Finding(rel, f"no Dependabot updates for {eco}")
        for eco in ("cargo", "github-actions", "terraform")
        if eco not in ecosystems
    ]


# --- entry points ------------------------------------------------------------


def workflow_files(root: Path) -> Iterable[Path]:
    """Workflows and composite actions under .github/."""
    gh = root / ".github"
    yield from sorted((gh / "workflows").glob("*.y*ml"))
    yield from sorted((gh / "actions").glob("*/action.y*ml"))


def check_repo(root: Path) -> list[Finding]:
    """Every check on a repository checkout."""
    root = root.resolve()
    findings: list[Finding] = []
    files = list(workflow_files(root))
    if not files:
        return [Finding(".github/workflows", "no workflows")]
    for path in files:
        findings += check_file(root, path)
    for rel, check in ((PIPELINE, check_pipeline), (TERRAFORM, check_terraform_workflow)):
        path = root / rel
        if not path.is_file():
            findings.append(Finding(rel, "missing"))
            continue
        doc = load_yaml(path)
        findings += check(rel, doc, root) if check is check_pipeline else check(rel, doc)
    dependabot = root / DEPENDABOT
    if dependabot.is_file():
        findings += check_dependabot(DEPENDABOT, load_yaml(dependabot) or {})
    else:
        findings.append(Finding(DEPENDABOT, "missing"))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    findings = check_repo(args.root)
    for f in findings:
        print(f"workflow check: {f}")
    if findings:
        print(f"workflow checks: FAIL ({len(findings)} finding(s))")
        return 1
    print("workflow checks: OK (stages and triggers, SHA pins, permissions, OIDC-only Azure sign-in, "
          "concurrency, Terraform plan/apply, deploy overlays, tested artifact digest, Dependabot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
