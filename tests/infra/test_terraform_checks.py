"""Tests for tests/infra/terraform_checks.py.

The real `terraform/` must pass. Each fixture under fixtures/terraform/ is a
small Terraform tree broken in one way, and copies of the real tree get one
setting changed; all of them must be rejected with a clear message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import terraform_checks as tc

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
            'version = "0.9.9"',
            "no recorded interface for Azure/avm-res-keyvault-vault/azurerm 0.9.9",
        ),
        (
            "modules/keyvault/main.tf",
            "  sku_name                      = \"standard\"\n",
            "  sku_name                      = \"standard\"\n  enable_rbac_authorization     = true\n",
            'passes "enable_rbac_authorization", which Azure/avm-res-keyvault-vault/azurerm does not declare',
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
            "      network_security_group          = { id = azurerm_network_security_group.aks.id }\n",
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
            "public_network_access_enabled = false",
            "public_network_access_enabled = true",
            "public_network_access_enabled must be false (non-TLS port is on)",
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
            "  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id\n  resource_group_name        = azurerm_resource_group.this.name\n  virtual_network_id         = module.networking.virtual_network_id\n  sku ",
            "  resource_group_name        = azurerm_resource_group.this.name\n  virtual_network_id         = module.networking.virtual_network_id\n  sku ",
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
        'resource "azurerm_redis_cache" "this" {\n',
        'resource "azurerm_redis_cache" "this" {\n  # checkov:skip=CKV_AZURE_91\n',
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
