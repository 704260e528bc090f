"""Tests for tests/infra/terraform_checks.py.

The real `terraform/` must pass. Each fixture under fixtures/terraform/ is a
small Terraform tree broken in one way, and copies of the real tree get one
setting changed; all of them must be rejected with a clear message.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import terraform_checks as tc
import terraform_interfaces as ti

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "terraform"


def run_all(terraform_dir: Path) -> str:
    findings = tc.Findings()
    findings.extend(tc.check_terraform_fmt(terraform_dir))
    findings.extend(tc.check_terraform_loader(terraform_dir))
    findings.extend(tc.check(terraform_dir))
    return "\n".join(findings)


def test_repository_passes() -> None:
    assert run_all(TERRAFORM) == ""


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("unknown-input", 'module "thing" passes "colour", which ./modules/thing does not declare'),
        ("missing-required-input", 'module "thing" does not pass required input "name" of ./modules/thing'),
        ("bad-output-reference", 'reference module.thing.identifier: module "thing" (./modules/thing) has no output "identifier"'),
        ("unpinned-avm", 'must be pinned to an exact version (version = "X.Y.Z"), found \'~> 0.10\''),
        ("undocumented-variable", 'variable "owner" has no type'),
        ("undocumented-variable", 'variable "owner" has no description'),
        ("provider-in-module", "local modules must not configure providers"),
        ("env-missing-variable", 'does not set required root variable "location"'),
        ("env-missing-variable", 'sets "locaton", which the root module does not declare'),
        ("unformatted", "files are not formatted as `terraform fmt` leaves them"),
        ("loader-error", 'Terraform: Unsupported argument: An argument named "ignore_change" is not expected here.'),
        ("secret-output", 'output "redis_key" exposes a secret value without sensitive = true'),
        # The workspace module call as it stood before the fix: `terraform validate` fails on it.
        (
            "avm-renamed-input",
            'module "avm_res_operationalinsights_workspace" passes "log_analytics_workspace_local_authentication_disabled", '
            "which Azure/avm-res-operationalinsights-workspace/azurerm 0.5.1 does not declare",
        ),
    ],
)
def test_broken_fixture_is_rejected(fixture: str, expected: str) -> None:
    messages = run_all(FIXTURES / fixture / "terraform")
    assert expected in messages, messages


def test_fmt_check_does_not_rewrite_files() -> None:
    path = FIXTURES / "unformatted" / "terraform" / "main.tf"
    before = path.read_text(encoding="utf-8")
    assert tc.check_terraform_fmt(path.parent)
    assert path.read_text(encoding="utf-8") == before


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    target = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, target, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    return target


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "modules/keyvault/main.tf",
            "public_network_access_enabled = false",
            "public_network_access_enabled = true",
            "public_network_access_enabled must be False, found True",
        ),
        (
            "modules/keyvault/main.tf",
            "purge_protection_enabled      = true",
            "purge_protection_enabled      = false",
            "purge_protection_enabled must be True, found False",
        ),
        (
            "modules/keyvault/main.tf",
            "legacy_access_policies_enabled = false",
            "legacy_access_policies_enabled = true",
            "legacy_access_policies_enabled (RBAC authorisation) must be False",
        ),
        (
            "modules/keyvault/main.tf",
            'version = "0.10.0"',
            'version = "0.0.0"',
            "no interface for Azure/avm-res-keyvault-vault/azurerm 0.0.0",
        ),
        (
            "modules/keyvault/main.tf",
            'version = "0.10.0"',
            'version = "0.11.0"',
            'requires hashicorp/azurerm ">= 4.81, < 5.1", but the root pins 4.68.0',
        ),
        (
            "terraform.tf",
            'required_version = ">= 1.12.0, < 2.0.0"',
            'required_version = ">= 1.9.0, < 2.0.0"',
            'the validation of "ipam_pools" relies on short-circuit evaluation',
        ),
        (
            "modules/storage/main.tf",
            '      public_access = "None"\n',
            '      public_access = "None"\n      access_tier   = "Hot"\n',
            "containers['results'] has no attribute \"access_tier\"",
        ),
        (
            "modules/storage/main.tf",
            "      name          = var.container_name\n",
            "",
            "containers['results'] lacks the required attribute \"name\"",
        ),
        (
            "modules/keyvault/main.tf",
            '    bypass         = "None"\n',
            '    bypass         = "None"\n    bypass_rules   = []\n',
            'network_acls has no attribute "bypass_rules"',
        ),
        (
            "modules/networking/outputs.tf",
            'subnets["aks"].resource_id',
            'subnet_ids["aks"]',
            'has no output "subnet_ids"',
        ),
        (
            "modules/aks/main.tf",
            "resource \"azurerm_role_assignment\" \"control_plane_kms_key\" {\n  count = var.etcd_kms_enabled ? 1 : 0",
            "resource \"azurerm_role_assignment\" \"control_plane_kms_key\" {\n  count = var.etcd_kms_key_id != null ? 1 : 0",
            "count tests whether var.etcd_kms_key_id is null",
        ),
        (
            "modules/aks/main.tf",
            "    keda_enabled = true\n",
            "    keda_enabled = false\n",
            "the KEDA add-on (workload_autoscaler_profile.keda_enabled) must be on",
        ),
        (
            "modules/identity/main.tf",
            "scope                = var.key_vault_secret_ids[each.value.secret]",
            "scope                = var.key_vault_id",
            "Key Vault Secrets User must be scoped to single secrets",
        ),
        (
            "modules/networking/main.nsg.tf",
            "destination_address_prefix = var.edge_public_ip_address",
            "destination_address_prefix = var.aks_subnet_prefix",
            "admits internet traffic to the subnet prefix",
        ),
        (
            "modules/networking/main.nsg.tf",
            'destination_port_ranges    = ["80", "443"]',
            'destination_port_ranges    = ["443"]',
            "nothing admits TCP 80 from the internet to the edge IP",
        ),
        (
            "modules/networking/main.tf",
            "azurerm_nat_gateway_public_ip_association.this[0].nat_gateway_id",
            "azurerm_nat_gateway.this[0].id",
            'subnet "aks" references the NAT gateway itself',
        ),
        (
            "locals.tf",
            "${urlencode(random_password.in_cluster_redis[0].result)}",
            "${random_password.in_cluster_redis[0].result}",
            "the password in a redis:// URL must be urlencode()d",
        ),
        (
            "main.tf",
            "data \"azurerm_subscription\" \"current\" {}\n",
            "data \"azurerm_subscription\" \"current\" {}\ndata \"azurerm_client_config\" \"current\" {}\n"
            "locals {\n  deployer = data.azurerm_client_config.current.object_id\n}\n",
            "uses the object id of whoever runs Terraform",
        ),
        (
            "modules/redis/main.tf",
            'clustering_policy                  = "NoCluster"',
            'clustering_policy                  = "OSSCluster"',
            "clustering_policy must be NoCluster or EnterpriseCluster",
        ),
        (
            "modules/redis/main.tf",
            'client_protocol                    = "Plaintext"',
            'client_protocol                    = "Encrypted"',
            'client_protocol must be "Plaintext"',
        ),
        (
            "modules/redis/main.tf",
            "    persistence_append_only_file_backup_frequency = \"1s\"\n",
            "",
            "the job queue needs persistence (AOF or RDB)",
        ),
        (
            "modules/monitoring/main.tf",
            "log_analytics_workspace_local_authentication_enabled = false",
            "log_analytics_workspace_local_authentication_enabled = true",
            "log_analytics_workspace_local_authentication_enabled must be False, found True",
        ),
        (
            "modules/keyvault/main.tf",
            "  sku_name                      = \"standard\"\n",
            "  sku_name                      = \"standard\"\n  enable_rbac_authorization     = true\n",
            'passes "enable_rbac_authorization", which Azure/avm-res-keyvault-vault/azurerm 0.10.0 does not declare',
        ),
        (
            "modules/storage/main.tf",
            'min_tls_version                   = "TLS1_2"',
            'min_tls_version                   = "TLS1_0"',
            "min_tls_version must be 'TLS1_2', found 'TLS1_0'",
        ),
        (
            "modules/storage/main.tf",
            "public_network_access_enabled = false",
            "public_network_access_enabled = true",
            "public_network_access_enabled must be False, found True",
        ),
        (
            "modules/storage/main.tf",
            'public_access = "None"',
            'public_access = "blob"',
            "containers.results.public_access must be 'None', found 'blob'",
        ),
        (
            "modules/networking/main.tf",
            "      network_security_group = { id = azurerm_network_security_group.aks.id }\n",
            "",
            'subnet "aks" has no network security group',
        ),
        (
            "modules/aks/main.tf",
            "local_account_disabled            = true",
            "local_account_disabled            = false",
            "local_account_disabled must be True, found False",
        ),
        (
            "modules/aks/main.tf",
            '"spin" = "true"',
            '"wasm" = "true"',
            'the Wasm pool must carry the node label spin = "true"',
        ),
        (
            "modules/aks/main.tf",
            "  os_type        = \"Linux\"\n",
            "  node_taints    = [\"spin=true:NoSchedule\"]\n  os_type        = \"Linux\"\n",
            "do not taint the Wasm pool",
        ),
        (
            "modules/redis/main.tf",
            'public_network_access     = "Disabled"',
            'public_network_access     = "Enabled"',
            'public_network_access must be "Disabled" (plaintext protocol is on)',
        ),
        (
            "modules/acr/main.tf",
            "admin_enabled                 = false",
            "admin_enabled                 = true",
            "admin_enabled must be false",
        ),
        (
            "outputs.tf",
            'output "redis_port" {',
            'output "redis_port_number" {',
            'missing root output "redis_port"',
        ),
        (
            "terraform.tf",
            'version = "4.68.0"',
            'version = "~> 4.68"',
            'provider "azurerm" must be pinned to an exact version',
        ),
        (
            "main.tf",
            "  name                       = \"redis-${local.flat_name}\"\n  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id\n",
            "  name                       = \"redis-${local.flat_name}\"\n",
            'module "redis" does not pass required input "private_endpoint_subnet_id" of ./modules/redis',
        ),
    ],
)
def test_broken_setting_is_rejected(terraform_copy: Path, file: str, old: str, new: str, expected: str) -> None:
    replace(terraform_copy / file, old, new)
    messages = "\n".join(tc.check(terraform_copy))
    assert expected in messages, messages


def test_checkov_skip_without_reason_is_rejected(terraform_copy: Path) -> None:
    replace(
        terraform_copy / "modules/redis/main.tf",
        'resource "azurerm_managed_redis" "this" {\n',
        'resource "azurerm_managed_redis" "this" {\n  # checkov:skip=CKV_AZURE_91\n',
    )
    messages = "\n".join(tc.check(terraform_copy))
    assert "checkov skip of CKV_AZURE_91 needs an inline reason" in messages, messages


def test_undocumented_root_input_is_rejected(terraform_copy: Path) -> None:
    with (terraform_copy / "variables.tf").open("a", encoding="utf-8") as handle:
        handle.write('\nvariable "zz_new" {\n  type        = string\n  default     = "x"\n  description = "New."\n}\n')
    messages = "\n".join(tc.check(terraform_copy))
    assert 'README.md: does not document root input "zz_new"' in messages, messages


def test_unknown_output_of_avm_module_is_rejected(terraform_copy: Path) -> None:
    replace(
        terraform_copy / "modules/keyvault/outputs.tf",
        "module.avm_res_keyvault_vault.uri",
        "module.avm_res_keyvault_vault.vault_uri",
    )
    messages = "\n".join(tc.check(terraform_copy))
    assert 'has no output "vault_uri"' in messages, messages


def test_unknown_output_of_indexed_module_is_rejected(terraform_copy: Path) -> None:
    replace(terraform_copy / "outputs.tf", "module.redis[0].hostname", "module.redis[0].host_name")
    messages = "\n".join(tc.check(terraform_copy))
    assert 'reference module.redis.host_name: module "redis" (./modules/redis) has no output "host_name"' in messages, messages


def test_neutralise_operators_keeps_operands() -> None:
    text = 'a = x > 1 && !var.c ? "y${1 + 2}" : "z"\nb = [for k in var.m : k if k != "x"]\n'
    assert tc.neutralise_operators(text) == (
        'a = coalesce(coalesce(x , 1) , coalesce(var.c)) ? "y${coalesce(1 , 2)}" : "z"\n'
        'b = [for k in var.m : k if coalesce(k , "x")]\n'
    )


def test_cli_exit_status() -> None:
    script = Path(tc.__file__)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    ok = subprocess.run(
        [sys.executable, str(script), str(TERRAFORM)], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "terraform checks: OK" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(script), str(FIXTURES / "unknown-input" / "terraform")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1
    assert 'FAIL terraform/main.tf: module "thing" passes "colour"' in bad.stdout


def test_secret_roles_follow_the_secret_provider_classes(terraform_copy: Path) -> None:
    base = terraform_copy.parent / "kubernetes" / "base"
    base.mkdir(parents=True)
    for workload in ("api", "worker"):
        name = f"secret-provider-class-{workload}.yaml"
        shutil.copy(ROOT / "kubernetes" / "base" / name, base / name)
    assert "\n".join(tc.check(terraform_copy)) == "\n".join(tc.check(TERRAFORM)) == ""
    # The worker mounts the API keys it has no role on, and loses redis-address.
    replace(base / "secret-provider-class-worker.yaml", "objectName: redis-address", "objectName: api-keys")
    messages = "\n".join(tc.check(terraform_copy))
    assert 'secret-provider-class-worker.yaml mounts "api-keys", but the worker identity has no Key Vault Secrets User role on it' in messages
    assert 'the worker identity may read secret "redis-address", which kubernetes/base/secret-provider-class-worker.yaml does not mount' in messages
    replace(terraform_copy / "modules/identity/main.tf", '"blob-sas-write", "redis-address"]', '"blob-sas-write", "redis-url"]')
    messages = "\n".join(tc.check(terraform_copy))
    assert 'the worker identity gets a role on secret "redis-url", which Terraform does not create' in messages


def test_azure_cache_for_redis_is_rejected(terraform_copy: Path) -> None:
    with (terraform_copy / "modules/redis/main.tf").open("a", encoding="utf-8") as handle:
        handle.write('\nresource "azurerm_redis_cache" "old" {\n  name = "x"\n}\n')
    messages = "\n".join(tc.check(terraform_copy))
    assert "azurerm_redis_cache.old: Azure Cache for Redis takes no new instances" in messages, messages


def test_ci_terraform_version_outside_required_version_is_rejected(terraform_copy: Path) -> None:
    workflow = terraform_copy.parent / ".github" / "workflows" / "terraform.yml"
    workflow.parent.mkdir(parents=True)
    text = (ROOT / ".github/workflows/terraform.yml").read_text(encoding="utf-8")
    current = tc.CI_TERRAFORM_VERSION.search(text)
    assert current, "the Terraform workflow pins TERRAFORM_VERSION"
    workflow.write_text(text.replace(current.group(0), "  TERRAFORM_VERSION: 1.11.4"), encoding="utf-8")
    messages = "\n".join(tc.check(terraform_copy))
    assert "runs Terraform 1.11.4, outside the root's required_version" in messages, messages
    assert "requires Terraform \">= 1.12.0, < 2.0.0\", but .github/workflows/terraform.yml runs 1.11.4" in messages


def test_repository_ci_runs_a_terraform_the_root_allows() -> None:
    text = (ROOT / ".github/workflows/terraform.yml").read_text(encoding="utf-8")
    version = tc.CI_TERRAFORM_VERSION.search(text).group(1)
    required = (TERRAFORM / "terraform.tf").read_text(encoding="utf-8")
    constraint = re.search(r'required_version = "([^"]+)"', required).group(1)
    assert ti.satisfies(version, constraint)
    assert ti.minimum_version(constraint) >= ti.SHORT_CIRCUIT_SINCE


def _module_archive(tmp_path: Path, name: str, version: str) -> Path:
    """A release archive laid out as GitHub serves it: <repo>-<version>/..."""
    top = f"terraform-azurerm-{name}-{version}"
    files = {
        f"{top}/variables.tf": 'variable "name" {\n  type = string\n}\n\nvariable "size" {\n  type    = object({ tier = string })\n  default = null\n}\n',
        f"{top}/outputs.tf": 'output "resource_id" {\n  value = "x"\n}\n',
        f"{top}/terraform.tf": 'terraform {\n  required_version = ">= 1.9"\n}\n',
        f"{top}/main.tf": 'resource "x" "y" {}\n',
        f"{top}/examples/default/variables.tf": 'variable "unrelated" {}\n',
    }
    archive = tmp_path / f"terraform-azurerm-{name}-v{version}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for member, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_interface_falls_back_to_the_module_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _module_archive(tmp_path, "avm-res-example-thing", "0.3.0")
    monkeypatch.setenv("AVM_SCHEMAS_DIR", str(tmp_path / "no-schemas"))
    monkeypatch.setenv("AVM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AVM_ARCHIVE_URL", f"file://{tmp_path}/{{repo}}-{{tag}}.tar.gz")
    interface = ti.registry_interface("Azure/avm-res-example-thing/azurerm", "0.3.0")
    assert set(interface.variables) == {"name", "size"}
    assert interface.variables["name"].required and not interface.variables["size"].required
    assert interface.outputs == {"resource_id"}
    assert interface.required_version == ">= 1.9"
    # Cached: the archive is not needed a second time.
    archive.unlink()
    again = ti.registry_interface("Azure/avm-res-example-thing/azurerm", "0.3.0")
    assert set(again.variables) == {"name", "size"}
    monkeypatch.setenv("AVM_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(ti.InterfaceNotFound):
        ti.registry_interface("Azure/avm-res-example-thing/azurerm", "0.3.0")


def test_interfaces_come_from_the_schemas_directory() -> None:
    interface = ti.registry_interface("Azure/avm-res-operationalinsights-workspace/azurerm", "0.5.1")
    assert "log_analytics_workspace_local_authentication_enabled" in interface.variables
    assert "log_analytics_workspace_local_authentication_disabled" not in interface.variables


def test_type_parser_and_value_check() -> None:
    node = ti.parse_type(
        '${map(object({name = optional(string, null), ports = optional(list(number), [1, 2]), '
        'inner = object({id = string, "quoted-key" = optional(map(string), {a = "b)"})}), t = tuple([string, bool])}))}'
    )
    assert node.kind == "map" and node.element is not None and node.element.kind == "object"
    attributes = node.element.attributes
    assert set(attributes) == {"name", "ports", "inner", "t"}
    assert attributes["name"][1] is True and attributes["inner"][1] is False
    assert set(attributes["inner"][0].attributes) == {"id", "quoted-key"}
    problems = ti.check_value({"a": {"inner": {"id": "x", "colour": "red"}, "extra": 1, "t": ["s", True]}}, node, "v")
    assert problems == [
        "v['a'] has no attribute \"extra\" (the type declares inner, name, ports, t)",
        "v['a'].inner has no attribute \"colour\" (the type declares id, quoted-key)",
    ]
    assert ti.check_value({"a": {"name": "n", "t": ["s", True]}}, node, "v") == [
        "v['a'] lacks the required attribute \"inner\""
    ]
    # Expressions are not evaluated.
    assert ti.check_value("${var.x ? {} : null}", node, "v") == []
    with pytest.raises(ti.TypeSyntaxError):
        ti.parse_type("object({a = })")


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("4.68.0", ">= 4.81, < 5.1", False),
        ("4.68.0", ">= 4.36.0, < 5.0.0", True),
        ("2.13.0", "~> 2.4", True),
        ("3.0.0", "~> 2.4", False),
        ("2.5.0", "~> 2.4.1", False),
        ("0.9.1", "~> 0.9", True),
        ("1.15.5", ">= 1.12.0, < 2.0.0", True),
        ("1.11.4", ">= 1.12.0, < 2.0.0", False),
        ("1.2.3", "!= 1.2.3", False),
    ],
)
def test_version_constraints(version: str, constraint: str, expected: bool) -> None:
    assert ti.satisfies(version, constraint) is expected


def test_minimum_version() -> None:
    assert ti.minimum_version(">= 1.9.0, < 2.0.0") == (1, 9, 0)
    assert ti.minimum_version("~> 1.12") == (1, 12, 0)
    assert ti.minimum_version("< 2.0") is None


def test_short_circuit_guard_detection() -> None:
    def guards(condition: str) -> list[tuple[str, str]]:
        interface = ti.Interface(where="x")
        interface.variables["x"] = ti.VariableSpec(name="x", type_text=None, required=False, validations=[condition])
        return ti.short_circuit_guards(interface)

    assert guards("${var.x == null || length(var.x) > 0}")
    assert guards("${var.x != null && var.x.enabled}")
    assert guards("${var.x == null || alltrue([for v in var.x : v != \"\"])}")
    assert not guards("${var.x == null ? true : length(var.x) > 0}")
    assert not guards("${(var.x != null && var.y == null) || (var.x == null && var.y != null)}")
    assert not guards("${var.x == null || can(regex(\"a\", var.x))}")
