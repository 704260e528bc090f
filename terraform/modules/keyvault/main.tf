locals {
  kms_key_name = "aks-etcd-kms"
  officer_role_assignments = {
    for k, id in var.secrets_officer_principal_ids : "secrets-officer-${k}" => {
      principal_id               = id
      role_definition_id_or_name = "Key Vault Secrets Officer"
    }
  }
}

# https://registry.terraform.io/modules/Azure/avm-res-keyvault-vault/azurerm/0.10.0
# (0.11.0 needs azurerm >= 4.81; this configuration pins 4.68.0.)
module "avm_res_keyvault_vault" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact version; registry sources cannot take a commit hash.
  source  = "Azure/avm-res-keyvault-vault/azurerm"
  version = "0.10.0"

  diagnostic_settings = {
    audit = {
      log_groups            = ["audit"]
      metric_categories     = []
      name                  = "audit-to-log-analytics"
      workspace_resource_id = var.log_analytics_workspace_id
    }
  }
  enable_telemetry = var.enable_telemetry
  # Azure RBAC for the data plane, never access policies.
  legacy_access_policies_enabled = false
  location                       = var.location
  name                           = var.name
  network_acls = {
    bypass         = "None"
    default_action = "Deny"
  }
  private_endpoints = {
    vault = {
      name                          = "pe-${var.name}"
      private_dns_zone_resource_ids = [azurerm_private_dns_zone.vault.id]
      subnet_resource_id            = var.private_endpoint_subnet_id
    }
  }
  public_network_access_enabled = false
  purge_protection_enabled      = true
  resource_group_name           = var.resource_group_name
  role_assignments              = local.officer_role_assignments
  sku_name                      = "standard"
  soft_delete_retention_days    = var.soft_delete_retention_days
  tags                          = var.tags
  tenant_id                     = var.tenant_id
}

resource "azurerm_private_dns_zone" "vault" {
  name                = "privatelink.vaultcore.azure.net"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "vault" {
  name                  = "vnet-link"
  private_dns_zone_name = azurerm_private_dns_zone.vault.name
  registration_enabled  = false
  resource_group_name   = var.resource_group_name
  tags                  = var.tags
  virtual_network_id    = var.virtual_network_id
}
