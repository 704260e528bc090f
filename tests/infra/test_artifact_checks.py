"""Tests for tests/infra/artifact_checks.py and scripts/push-artifact.sh.

A well-formed artifact, shaped like what Spin 3.6.3 pushes for this app, must
pass; each broken variant of it must be rejected with a clear message.
scripts/check-artifact.sh runs the same checks against a real registry.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

import artifact_checks as ac

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {
    "api": "target/wasm32-wasip1/release/api.wasm",
    "worker": "target/wasm32-wasip1/release/worker.wasm",
    "worker-health": "target/wasm32-wasip1/release/worker_health.wasm",
}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def build(
    wasm: dict[str, bytes] | None = None,
    locked_edit=None,
    manifest_edit=None,
    config_edit=None,
) -> ac.Artifact:
    """An artifact as Spin pushes it: a layer per component, the locked app, the OCI config."""
    wasm = wasm or {cid: ac.COMPONENT_PREAMBLE + cid.encode() * 50 for cid in COMPONENTS}
    locked = {
        "spin_lock_version": 0,
        "metadata": {"name": "jobs-platform"},
        "components": [
            {"id": cid, "source": {"content_type": "application/wasm", "digest": digest(data)}}
            for cid, data in wasm.items()
        ],
    }
    if locked_edit:
        locked_edit(locked)
    locked_bytes = json.dumps(locked).encode()
    config = {
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Labels": {ac.LOCKED_APP_LABEL: digest(locked_bytes)}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if config_edit:
        config_edit(config)
    config_bytes = json.dumps(config).encode()
    layers = [descriptor(ac.WASM_MEDIA_TYPE, data) for data in dict.fromkeys(wasm.values())]
    manifest = {
        "schemaVersion": 2,
        "config": descriptor(ac.CONFIG_MEDIA_TYPE, config_bytes),
        "layers": layers + [descriptor(ac.LOCKED_APP_MEDIA_TYPE, locked_bytes)],
        "annotations": {"org.opencontainers.image.title": "jobs-platform"},
    }
    if manifest_edit:
        manifest_edit(manifest)
    manifest_bytes = json.dumps(manifest).encode()
    blobs = {digest(b): b for b in [*wasm.values(), locked_bytes, config_bytes]}
    return ac.Artifact(
        digest=digest(manifest_bytes),
        manifest=manifest_bytes,
        served_digest=digest(manifest_bytes),
        content_type=ac.MANIFEST_MEDIA_TYPE,
        tag_digests={"0123abc": digest(manifest_bytes), "v0.1.0": digest(manifest_bytes)},
        blobs=blobs,
    )


def findings_of(artifact: ac.Artifact) -> str:
    findings, _ = ac.check_artifact(artifact, COMPONENTS)
    return "\n".join(findings)


def test_well_formed_artifact_passes_and_is_measured():
    artifact = build()
    findings, summary = ac.check_artifact(artifact, COMPONENTS)
    assert findings == []
    assert [layer["component"] for layer in summary["layers"]] == ["api", "worker", "worker-health"]
    manifest = json.loads(artifact.manifest)
    expected = len(artifact.manifest) + manifest["config"]["size"] + sum(d["size"] for d in manifest["layers"])
    assert summary["total_bytes"] == expected


def test_real_spin_toml_has_the_three_components():
    assert ac.spin_components(ROOT / "spin.toml") == COMPONENTS


# --- broken artifacts ---------------------------------------------------------


def test_rejects_a_manifest_served_under_another_digest():
    artifact = build()
    artifact.served_digest = "sha256:" + "ab" * 32
    assert f"the registry serves the manifest as sha256:{'ab' * 32}, not {artifact.digest}" in findings_of(artifact)


def test_rejects_manifest_bytes_that_do_not_hash_to_the_digest():
    artifact = build()
    artifact.manifest = artifact.manifest.replace(b"jobs-platform", b"jobs-platfore")
    assert f"the manifest served for {artifact.digest} has SHA-256" in findings_of(artifact)


def test_rejects_a_tag_that_names_another_manifest():
    artifact = build()
    artifact.tag_digests["v0.1.0"] = "sha256:" + "cd" * 32
    artifact.tag_digests["gone"] = None
    out = findings_of(artifact)
    assert f"tag v0.1.0 names sha256:{'cd' * 32}, not the pushed {artifact.digest}" in out
    assert f"tag gone names nothing, not the pushed {artifact.digest}" in out


def test_rejects_a_docker_manifest():
    artifact = build()
    artifact.content_type = "application/vnd.docker.distribution.manifest.v2+json"
    assert "serves the manifest as 'application/vnd.docker.distribution.manifest.v2+json'" in findings_of(artifact)


def test_rejects_the_locked_app_as_config():
    # The layout of older Spin releases: the locked application as the config.
    def edit(manifest):
        manifest["config"]["mediaType"] = ac.LOCKED_APP_MEDIA_TYPE

    out = findings_of(build(manifest_edit=edit))
    assert f"config media type is '{ac.LOCKED_APP_MEDIA_TYPE}', not {ac.CONFIG_MEDIA_TYPE}" in out


def test_rejects_a_config_that_names_another_locked_app():
    def edit(config):
        config["config"]["Labels"][ac.LOCKED_APP_LABEL] = "sha256:" + "00" * 32

    assert f"config label {ac.LOCKED_APP_LABEL} is 'sha256:{'00' * 32}'" in findings_of(build(config_edit=edit))


def test_rejects_a_config_for_another_platform():
    def edit(config):
        config["architecture"], config["os"] = "amd64", "linux"

    assert "config platform is amd64/linux, not wasm/wasip1" in findings_of(build(config_edit=edit))


def test_rejects_a_layer_with_another_media_type():
    def edit(manifest):
        manifest["layers"][0]["mediaType"] = "application/wasm"

    out = findings_of(build(manifest_edit=edit))
    assert "has media type 'application/wasm'" in out
    assert "2 Wasm layers (application/vnd.wasm.content.layer.v1+wasm), expected one per component source: 3" in out


def test_rejects_a_core_module_layer():
    wasm = {cid: ac.COMPONENT_PREAMBLE + cid.encode() * 50 for cid in COMPONENTS}
    wasm["worker"] = ac.MODULE_PREAMBLE + b"worker" * 50
    assert f"Wasm layer {digest(wasm['worker'])} is a core module, not a component" in findings_of(build(wasm))


def test_rejects_a_layer_that_is_not_wasm():
    wasm = {cid: ac.COMPONENT_PREAMBLE + cid.encode() * 50 for cid in COMPONENTS}
    wasm["api"] = b"PK\x03\x04 not wasm"
    assert f"Wasm layer {digest(wasm['api'])} is not a Wasm component" in findings_of(build(wasm))


def test_rejects_a_missing_component_layer():
    def edit(manifest):
        del manifest["layers"][2]

    out = findings_of(build(manifest_edit=edit))
    assert "2 Wasm layers (application/vnd.wasm.content.layer.v1+wasm), expected one per component source: 3" in out
    assert "component worker-health: source sha256:" in out and "is not a Wasm layer of the manifest" in out


def test_rejects_a_layer_no_component_uses():
    def edit(manifest):
        extra = ac.COMPONENT_PREAMBLE + b"stray"
        manifest["layers"].insert(0, descriptor(ac.WASM_MEDIA_TYPE, extra))

    artifact = build(manifest_edit=edit)
    extra = ac.COMPONENT_PREAMBLE + b"stray"
    artifact.blobs[digest(extra)] = extra
    out = findings_of(artifact)
    assert f"Wasm layer {digest(extra)} belongs to no component" in out
    assert "4 Wasm layers" in out


def test_rejects_a_blob_the_registry_does_not_serve_or_serves_changed():
    artifact = build()
    manifest = json.loads(artifact.manifest)
    missing, changed = manifest["layers"][0]["digest"], manifest["layers"][1]["digest"]
    del artifact.blobs[missing]
    artifact.blobs[changed] = ac.COMPONENT_PREAMBLE + b"tampered"
    out = findings_of(artifact)
    assert f"Wasm layer {missing}: not served by the registry" in out
    assert f"Wasm layer {changed}: the registry served content with SHA-256" in out
    assert f"Wasm layer {changed}: 16 bytes, the manifest says" in out


def test_rejects_a_locked_app_with_a_local_path():
    def edit(locked):
        locked["components"][0]["source"]["source"] = "file:///home/dev/api.wasm"

    assert "still names a local file (file://)" in findings_of(build(locked_edit=edit))


def test_rejects_a_locked_app_without_a_component():
    def edit(locked):
        locked["components"] = locked["components"][:2]

    out = findings_of(build(locked_edit=edit))
    assert "the locked application has components ['api', 'worker'], spin.toml has" in out
    assert "belongs to no component" in out


def test_rejects_two_locked_app_layers():
    def edit(manifest):
        manifest["layers"].append(copy.deepcopy(manifest["layers"][-1]))

    assert "2 locked-application layers" in findings_of(build(manifest_edit=edit))


# --- against a registry over HTTP ----------------------------------------------


@pytest.fixture
def registry():
    """A read-only registry serving one artifact under /v2/jobs-platform/."""
    artifact = build()
    tags = {"0123abc": artifact.digest}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            prefix = "/v2/jobs-platform/"
            kind, _, ref = self.path[len(prefix):].partition("/") if self.path.startswith(prefix) else ("", "", "")
            body, headers = None, {}
            if kind == "manifests" and tags.get(ref, ref) == artifact.digest:
                body = artifact.manifest
                headers = {"Content-Type": ac.MANIFEST_MEDIA_TYPE, "Docker-Content-Digest": artifact.digest}
            elif kind == "blobs" and ref in artifact.blobs:
                body = artifact.blobs[ref]
            if body is None:
                body, headers = b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {"Content-Type": "application/json"}
                self.send_response(404)
            else:
                self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", artifact
    server.shutdown()
    server.server_close()


def spin_toml_with_sources(tmp_path: Path, artifact: ac.Artifact) -> Path:
    """A spin.toml naming the three sources, written beside files of the right size."""
    for cid, source in COMPONENTS.items():
        path = tmp_path / source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ac.MODULE_PREAMBLE + cid.encode() * 60)
    lines = [f'[component.{cid}]\nsource = "{source}"\n' for cid, source in COMPONENTS.items()]
    (tmp_path / "spin.toml").write_text("\n".join(lines))
    return tmp_path / "spin.toml"


def test_cli_reads_a_registry_and_writes_the_measurement(registry, tmp_path, capsys):
    url, artifact = registry
    report = tmp_path / "oci.json"
    code = ac.main(["--registry", url, "--image", f"jobs-platform@{artifact.digest}", "--tag", "0123abc",
                    "--spin-toml", str(spin_toml_with_sources(tmp_path, artifact)), "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "artifact checks: OK" in out
    summary = json.loads(report.read_text())
    assert summary["digest"] == artifact.digest
    assert summary["total_bytes"] > sum(layer["bytes"] for layer in summary["layers"])
    assert all(layer["source_bytes"] == 4 + 4 + len(layer["component"]) * 60 for layer in summary["layers"])


def test_cli_fails_on_a_digest_the_registry_does_not_have(registry, tmp_path, capsys):
    url, artifact = registry
    missing = "sha256:" + "0" * 64
    code = ac.main(["--registry", url, "--image", f"jobs-platform@{missing}",
                    "--spin-toml", str(spin_toml_with_sources(tmp_path, artifact))])
    out = capsys.readouterr().out
    assert code == 1
    assert f"answered 404: the deploy step would not find jobs-platform@{missing}" in out


def test_cli_fails_on_a_tag_the_registry_does_not_have(registry, tmp_path, capsys):
    url, artifact = registry
    code = ac.main(["--registry", url, "--image", f"jobs-platform@{artifact.digest}", "--tag", "v9.9.9",
                    "--spin-toml", str(spin_toml_with_sources(tmp_path, artifact))])
    assert code == 1
    assert "tag v9.9.9 names nothing" in capsys.readouterr().out


def test_cli_wants_a_digest(capsys):
    assert ac.main(["--registry", "http://127.0.0.1:9", "--image", "jobs-platform:latest"]) == 1
    assert "is not pinned by digest" in capsys.readouterr().out


# --- scripts/push-artifact.sh against a stub spin ---------------------------------

STUB_SPIN = """#!/bin/sh
echo "spin $*" >>"$STUB_LOG"
n=$(grep -c 'registry push' "$STUB_LOG")
case "$STUB_MODE" in
  same) echo "Pushed with digest sha256:%(cd)s" ;;
  none) echo "Pushed; the registry did not return the digest" ;;
  differ) echo "Pushed with digest sha256:$(printf '%%064d' "$n")" ;;
  fail) echo "Error: cannot push Spin application" >&2; exit 1 ;;
esac
""" % {"cd": "cd" * 32}


def push(tmp_path: Path, mode: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    stub = tmp_path / "spin"
    stub.write_text(STUB_SPIN)
    stub.chmod(0o755)
    env = dict(os.environ, SPIN=str(stub), STUB_LOG=str(tmp_path / "log"), STUB_MODE=mode,
               ARTIFACT_CREATED="2026-01-02T03:04:05Z")
    env.pop("ARTIFACT_EXPECT_DIGEST", None)
    env.update(extra)
    (tmp_path / "log").touch()
    return subprocess.run([str(ROOT / "scripts" / "push-artifact.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_push_prints_the_reference_by_digest(tmp_path):
    result = push(tmp_path, "same", "--insecure", "127.0.0.1:5000/jobs-platform:0123abc", "v1.2.3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"127.0.0.1:5000/jobs-platform@sha256:{'cd' * 32}\n"
    calls = (tmp_path / "log").read_text().splitlines()
    created = "--annotation org.opencontainers.image.created=2026-01-02T03:04:05Z"
    assert calls == [
        f"spin registry push --insecure {created} 127.0.0.1:5000/jobs-platform:0123abc",
        f"spin registry push --insecure {created} 127.0.0.1:5000/jobs-platform:v1.2.3",
    ]


def test_push_accepts_the_expected_digest(tmp_path):
    result = push(tmp_path, "same", "example.azurecr.io/jobs-platform:0123abc",
                  ARTIFACT_EXPECT_DIGEST=f"sha256:{'cd' * 32}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"example.azurecr.io/jobs-platform@sha256:{'cd' * 32}\n"


def test_push_fails_on_another_digest_than_the_tested_one(tmp_path):
    tested = f"sha256:{'ef' * 32}"
    result = push(tmp_path, "same", "example.azurecr.io/jobs-platform:0123abc", ARTIFACT_EXPECT_DIGEST=tested)
    assert result.returncode == 1
    assert (f"example.azurecr.io/jobs-platform got sha256:{'cd' * 32}, but the artifact that was checked and run "
            f"(scripts/check-artifact.sh) is {tested}: not deploying an untested artifact") in result.stderr
    assert result.stdout == ""


def test_push_fails_without_a_digest(tmp_path):
    result = push(tmp_path, "none", "example.azurecr.io/jobs-platform:0123abc")
    assert result.returncode == 1
    assert "reported no digest; the deploy step pins the image by digest" in result.stderr
    assert result.stdout == ""


def test_push_fails_when_tags_name_different_manifests(tmp_path):
    result = push(tmp_path, "differ", "example.azurecr.io/jobs-platform:0123abc", "v1.2.3")
    assert result.returncode == 1
    assert f"example.azurecr.io/jobs-platform:v1.2.3 is sha256:{2:064d} but example.azurecr.io/jobs-platform:0123abc" \
        in result.stderr
    assert "the tags name different manifests" in result.stderr


def test_push_fails_when_spin_fails(tmp_path):
    result = push(tmp_path, "fail", "example.azurecr.io/jobs-platform:0123abc")
    assert result.returncode == 1
    assert "cannot push Spin application" in result.stderr
    assert "spin registry push example.azurecr.io/jobs-platform:0123abc failed" in result.stderr


@pytest.mark.parametrize("ref", ["jobs-platform:latest", "127.0.0.1:5000/jobs-platform", "example.io/app:bad/tag"])
def test_push_rejects_references_without_registry_or_tag(tmp_path, ref):
    result = push(tmp_path, "same", ref)
    assert result.returncode == 1
    assert "not a <registry>/<repository>:<tag> reference" in result.stderr or "not a tag" in result.stderr
    assert (tmp_path / "log").read_text() == ""


# --- scripts/check-artifact.sh without a Spin CLI ---------------------------------


def test_check_says_it_did_not_run_without_a_spin_cli(tmp_path):
    # A copy of the repository's scripts with no ../shared beside it, and a PATH without spin.
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("check-artifact.sh", "lib.sh"):
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts" / name)
    shutil.copy2(ROOT / "spin.toml", repo / "spin.toml")
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "spin").exists()]
    env = dict(os.environ, PATH=os.pathsep.join(path))
    result = subprocess.run([str(repo / "scripts" / "check-artifact.sh")], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "artifact check: NOT RUN: no Spin CLI" in result.stderr
    assert not (repo / ".local" / "artifact").exists()
