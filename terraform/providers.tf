provider "azurerm" {
  # Storage data-plane calls use Entra ID instead of the account key.
  storage_use_azuread = true

  features {
    key_vault {
      # Purge protection is on: never try to purge a deleted vault or its secrets.
      purge_soft_delete_on_destroy               = false
      purge_soft_deleted_secrets_on_destroy      = false
      recover_soft_deleted_key_vaults            = true
      recover_soft_deleted_secrets               = true
      purge_soft_deleted_keys_on_destroy         = false
      purge_soft_deleted_certificates_on_destroy = false
    }
    storage {
      # The storage account has public access off, so its data plane is out of
      # reach from CI runners; this configuration uses no data-plane settings
      # (queue properties, static website) on it.
      data_plane_available = false
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}

provider "azapi" {}
