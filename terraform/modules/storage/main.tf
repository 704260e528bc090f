# https://registry.terraform.io/modules/Azure/avm-res-storage-storageaccount/azurerm/0.9.0
# (built on azapi: the account keys are not exported, so not in the state).
module "avm_res_storage_storageaccount" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact version; registry sources cannot take a commit hash.
  source  = "Azure/avm-res-storage-storageaccount/azurerm"
  version = "0.9.0"

  account_kind                    = "StorageV2"
  account_sku_name                = "Standard_${var.replication_type}"
  allow_nested_items_to_be_public = false
  # Results are written once and expire; versioning would keep every deleted
  # result alive. Soft delete keeps a deleted blob or container for 7 days.
  blob_properties = {
    container_delete_retention_policy = { days = 7, enabled = true }
    delete_retention_policy           = { days = 7, enabled = true }
    versioning_enabled                = false
  }
  containers = {
    results = {
      name          = var.container_name
      public_access = "None"
    }
  }
  cross_tenant_replication_enabled  = false
  default_to_oauth_authentication   = true
  enable_telemetry                  = var.enable_telemetry
  https_traffic_only_enabled        = true
  infrastructure_encryption_enabled = true
  location                          = var.location
  min_tls_version                   = "TLS1_2"
  name                              = var.name
  network_rules = {
    bypass         = ["AzureServices"]
    default_action = "Deny"
  }
  parent_id = var.resource_group_id
  private_endpoints = {
    blob = {
      name                          = "pe-${var.name}-blob"
      private_dns_zone_resource_ids = [azurerm_private_dns_zone.blob.id]
      subnet_resource_id            = var.private_endpoint_subnet_id
      subresource_name              = "blob"
    }
  }
  public_network_access_enabled = false
  shared_access_key_enabled     = var.shared_access_key_enabled
  storage_management_policy_rule = {
    expire_results = {
      actions = {
        base_blob = {
          delete_after_days_since_modification_greater_than = var.results_retention_days
        }
        version = {
          delete_after_days_since_creation = var.results_retention_days
        }
      }
      enabled = true
      filters = {
        blob_types   = ["blockBlob"]
        prefix_match = ["${var.container_name}/"]
      }
      name = "delete-old-results"
    }
  }
  tags = var.tags
}

resource "azurerm_private_dns_zone" "blob" {
  name                = "privatelink.blob.core.windows.net"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "blob" {
  name                  = "vnet-link"
  private_dns_zone_name = azurerm_private_dns_zone.blob.name
  registration_enabled  = false
  resource_group_name   = var.resource_group_name
  tags                  = var.tags
  virtual_network_id    = var.virtual_network_id
}
