"""Checks of the Spin application's OCI artifact as a registry serves it.

What ``spin registry push`` (Spin 3.6.3, ``crates/oci/src/client.rs``) uploads
for this project, read back through the registry's HTTP API:

* the manifest is an OCI image manifest (served as
  ``application/vnd.oci.image.manifest.v1+json``) and the registry serves it
  under the pushed digest (``Docker-Content-Digest`` and the SHA-256 of the
  bytes agree), and every tag pushed with it names the same digest;
* the config is an OCI image config (``application/vnd.oci.image.config.v1+json``)
  for ``wasm``/``wasip1`` whose label ``com.fermyon.spin.lockedAppDigest``
  names the locked-application layer;
* one layer ``application/vnd.fermyon.spin.application.v1+config``: the locked
  application, whose components are exactly spin.toml's, each with its source
  by digest (no ``file://`` path left);
* one layer ``application/vnd.wasm.content.layer.v1+wasm`` per component
  source and nothing else: each a Wasm component (Spin turns ``wasm32-wasip1``
  modules into components before pushing), named by exactly one component;
* every blob's size and SHA-256 match its descriptor.

It reports the total size (manifest + config + layers), the artifact's
measured size.

Run ``python3 tests/infra/artifact_checks.py --registry http://127.0.0.1:PORT
--image REPOSITORY@sha256:... [--tag TAG ...] [--report FILE]``: prints every
finding and exits 1 if there is any. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LOCKED_APP_MEDIA_TYPE = "application/vnd.fermyon.spin.application.v1+config"
WASM_MEDIA_TYPE = "application/vnd.wasm.content.layer.v1+wasm"
LOCKED_APP_LABEL = "com.fermyon.spin.lockedAppDigest"
# A Wasm component's preamble: magic, version 0x0d, layer 1 (a core module has version 1, layer 0).
COMPONENT_PREAMBLE = b"\0asm\x0d\x00\x01\x00"
MODULE_PREAMBLE = b"\0asm\x01\x00\x00\x00"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Artifact:
    """What the registry served for one pushed reference."""

    digest: str
    manifest: bytes
    served_digest: str | None
    content_type: str | None = None
    tag_digests: dict[str, str | None] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


def spin_components(spin_toml: Path) -> dict[str, str]:
    """Component id -> source path, from spin.toml."""
    with spin_toml.open("rb") as f:
        doc = tomllib.load(f)
    return {cid: c.get("source") for cid, c in (doc.get("component") or {}).items()}


def check_artifact(artifact: Artifact, components: dict[str, str]) -> tuple[list[str], dict]:
    """Every finding about the artifact, and a summary of it (sizes per layer)."""
    findings: list[str] = []
    summary: dict = {"digest": artifact.digest}

    if sha256(artifact.manifest) != artifact.digest:
        findings.append(f"the manifest served for {artifact.digest} has SHA-256 {sha256(artifact.manifest)}")
    if artifact.served_digest != artifact.digest:
        findings.append(f"the registry serves the manifest as {artifact.served_digest}, not {artifact.digest}")
    for tag, digest in artifact.tag_digests.items():
        if digest != artifact.digest:
            findings.append(f"tag {tag} names {digest or 'nothing'}, not the pushed {artifact.digest}")

    try:
        manifest = json.loads(artifact.manifest)
    except ValueError as e:
        return findings + [f"the manifest is not JSON: {e}"], summary
    # Spin leaves the optional `mediaType` out of the body; the registry serves
    # the manifest with it as Content-Type.
    if manifest.get("mediaType", MANIFEST_MEDIA_TYPE) != MANIFEST_MEDIA_TYPE:
        findings.append(f"manifest media type is {manifest.get('mediaType')!r}, not {MANIFEST_MEDIA_TYPE}")
    if artifact.content_type != MANIFEST_MEDIA_TYPE:
        findings.append(f"the registry serves the manifest as {artifact.content_type!r}, not {MANIFEST_MEDIA_TYPE}")
    if manifest.get("schemaVersion") != 2:
        findings.append(f"manifest schemaVersion is {manifest.get('schemaVersion')!r}, not 2")

    def blob(descriptor: dict, what: str) -> bytes | None:
        digest = descriptor.get("digest")
        data = artifact.blobs.get(digest)
        if data is None:
            findings.append(f"{what} {digest}: not served by the registry")
            return None
        if sha256(data) != digest:
            findings.append(f"{what} {digest}: the registry served content with SHA-256 {sha256(data)}")
        if len(data) != descriptor.get("size"):
            findings.append(f"{what} {digest}: {len(data)} bytes, the manifest says {descriptor.get('size')}")
        return data

    config_desc = manifest.get("config") or {}
    if config_desc.get("mediaType") != CONFIG_MEDIA_TYPE:
        findings.append(f"config media type is {config_desc.get('mediaType')!r}, not {CONFIG_MEDIA_TYPE}")
    config_bytes = blob(config_desc, "config")
    config = {}
    if config_bytes is not None:
        try:
            config = json.loads(config_bytes)
        except ValueError:
            findings.append("the config is not JSON")
    if config and (config.get("architecture"), config.get("os")) != ("wasm", "wasip1"):
        findings.append(f"config platform is {config.get('architecture')}/{config.get('os')}, not wasm/wasip1")

    layers = manifest.get("layers") or []
    locked_descs = [d for d in layers if d.get("mediaType") == LOCKED_APP_MEDIA_TYPE]
    wasm_descs = [d for d in layers if d.get("mediaType") == WASM_MEDIA_TYPE]
    for d in layers:
        if d.get("mediaType") not in (LOCKED_APP_MEDIA_TYPE, WASM_MEDIA_TYPE):
            findings.append(f"layer {d.get('digest')} has media type {d.get('mediaType')!r}: "
                            "the app has no static files, only Wasm layers and the locked application")
    if len(locked_descs) != 1:
        findings.append(f"{len(locked_descs)} locked-application layers ({LOCKED_APP_MEDIA_TYPE}), expected 1")
    labels = (config.get("config") or {}).get("Labels") or {}
    if locked_descs and config and labels.get(LOCKED_APP_LABEL) != locked_descs[0].get("digest"):
        findings.append(f"config label {LOCKED_APP_LABEL} is {labels.get(LOCKED_APP_LABEL)!r}, "
                        f"not the locked-application layer {locked_descs[0].get('digest')}")

    sources = sorted({s for s in components.values() if s})
    if len(wasm_descs) != len(sources):
        findings.append(f"{len(wasm_descs)} Wasm layers ({WASM_MEDIA_TYPE}), expected one per component "
                        f"source: {len(sources)} ({', '.join(sources)})")
    wasm_sizes = {}
    for d in wasm_descs:
        data = blob(d, "Wasm layer")
        if data is None:
            continue
        wasm_sizes[d.get("digest")] = len(data)
        if data.startswith(MODULE_PREAMBLE):
            findings.append(f"Wasm layer {d.get('digest')} is a core module, not a component")
        elif not data.startswith(COMPONENT_PREAMBLE):
            findings.append(f"Wasm layer {d.get('digest')} is not a Wasm component")

    locked = {}
    if len(locked_descs) == 1:
        locked_bytes = blob(locked_descs[0], "locked-application layer")
        if locked_bytes is not None:
            try:
                locked = json.loads(locked_bytes)
            except ValueError:
                findings.append("the locked-application layer is not JSON")
            if b"file://" in locked_bytes:
                findings.append("the locked application still names a local file (file://): it is not self-contained")
    layer_of: dict[str, str] = {}
    if locked:
        locked_components = {c.get("id"): c for c in locked.get("components") or []}
        if set(locked_components) != set(components):
            findings.append(f"the locked application has components {sorted(locked_components)}, "
                            f"spin.toml has {sorted(components)}")
        for cid, c in sorted(locked_components.items()):
            # The locked source's content reference (flattened): the layer's digest.
            digest = (c.get("source") or {}).get("digest")
            if digest not in wasm_sizes:
                findings.append(f"component {cid}: source {digest} is not a Wasm layer of the manifest")
            else:
                layer_of[cid] = digest
        named = {}
        for cid, digest in layer_of.items():
            named.setdefault(components.get(cid), set()).add(digest)
        for source, digests in sorted(named.items(), key=lambda kv: str(kv[0])):
            if len(digests) != 1:
                findings.append(f"source {source}: components of it point at {len(digests)} different layers")
        unused = set(wasm_sizes) - set(layer_of.values())
        for digest in sorted(unused):
            findings.append(f"Wasm layer {digest} belongs to no component")

    sizes = [len(artifact.manifest)] + [int(config_desc.get("size") or 0)] + [int(d.get("size") or 0) for d in layers]
    summary.update(
        manifest_bytes=len(artifact.manifest),
        config_bytes=int(config_desc.get("size") or 0),
        locked_app_bytes=int(locked_descs[0].get("size") or 0) if locked_descs else 0,
        layers=[
            {"component": cid, "source": components.get(cid), "digest": digest, "bytes": wasm_sizes[digest]}
            for cid, digest in sorted(layer_of.items())
        ],
        total_bytes=sum(sizes),
    )
    return findings, summary


# --- reading it from a registry ----------------------------------------------

Fetch = Callable[[str, dict], tuple[int, dict, bytes]]


def http_get(url: str, headers: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def read_artifact(registry: str, image: str, tags: list[str], fetch: Fetch = http_get) -> Artifact:
    """The manifest under the image's digest, its tags' digests and every blob it names."""
    repository, _, digest = image.partition("@")
    base = f"{registry.rstrip('/')}/v2/{repository}"
    accept = {"Accept": MANIFEST_MEDIA_TYPE}
    status, headers, body = fetch(f"{base}/manifests/{digest}", accept)
    if status != 200:
        raise LookupError(f"GET /v2/{repository}/manifests/{digest} answered {status}: the deploy step "
                          f"would not find {image} ({body[:200]!r})")
    artifact = Artifact(digest=digest, manifest=body, served_digest=headers.get("docker-content-digest"),
                        content_type=headers.get("content-type"))
    for tag in tags:
        status, headers, _ = fetch(f"{base}/manifests/{tag}", accept)
        artifact.tag_digests[tag] = headers.get("docker-content-digest") if status == 200 else None
    try:
        manifest = json.loads(body)
    except ValueError:
        return artifact
    for d in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
        digest = d.get("digest")
        if digest and digest not in artifact.blobs:
            status, _, data = fetch(f"{base}/blobs/{digest}", {})
            if status == 200:
                artifact.blobs[digest] = data
    return artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="registry base URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--image", required=True, help="REPOSITORY@sha256:DIGEST as pushed")
    parser.add_argument("--tag", action="append", default=[], help="a tag pushed with it (repeatable)")
    parser.add_argument("--spin-toml", type=Path, default=ROOT / "spin.toml")
    parser.add_argument("--report", type=Path, help="write the summary here as JSON")
    args = parser.parse_args(argv)

    if "@sha256:" not in args.image:
        print(f"artifact check: {args.image} is not pinned by digest")
        return 1
    components = spin_components(args.spin_toml)
    try:
        artifact = read_artifact(args.registry, args.image, args.tag)
    except (LookupError, OSError) as e:
        print(f"artifact check: {e}")
        return 1
    findings, summary = check_artifact(artifact, components)
    for f in findings:
        print(f"artifact check: {f}")
    if findings:
        print(f"artifact checks: FAIL ({len(findings)} finding(s))")
        return 1

    root = args.spin_toml.resolve().parent
    for layer in summary["layers"]:
        source = root / layer["source"]
        layer["source_bytes"] = source.stat().st_size
        layer["source_sha256"] = sha256(source.read_bytes())
    summary["image"] = args.image
    summary["tags"] = args.tag
    for layer in summary["layers"]:
        print(f"  layer {layer['component']:<14} {layer['bytes']:>9} bytes  "
              f"({layer['source']}: {layer['source_bytes']} bytes as a module)")
    print(f"  locked application {summary['locked_app_bytes']} bytes, config {summary['config_bytes']} bytes, "
          f"manifest {summary['manifest_bytes']} bytes")
    print(f"  total {summary['total_bytes']} bytes ({summary['total_bytes'] // 1024} KiB)")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"artifact checks: OK ({args.image}: OCI manifest, config, locked application, "
          f"{len(summary['layers'])} Wasm component layers, tags {', '.join(args.tag) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
