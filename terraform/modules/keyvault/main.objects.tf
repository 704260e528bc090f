# Keys and secrets are created through Azure Resource Manager
# (Microsoft.KeyVault/vaults/keys and .../secrets), not the vault's data plane:
# the vault takes no public traffic and trusts no service (`bypass = "None"`),
# so the data plane is out of reach of CI runners, while management-plane
# writes are authorised by Azure RBAC on the vault and need no network path.

# The RSA key AKS KMS encrypts etcd with. Switched by a boolean known at plan
# time, never by the key's id.
resource "azapi_resource" "etcd_kms_key" {
  count = var.etcd_kms_key_enabled ? 1 : 0

  body = {
    properties = {
      keyOps  = ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
      keySize = 2048
      kty     = "RSA"
    }
  }
  name                   = local.kms_key_name
  parent_id              = module.avm_res_keyvault_vault.resource_id
  response_export_values = ["properties.keyUriWithVersion"]
  type                   = "Microsoft.KeyVault/vaults/keys@2023-07-01"

  lifecycle {
    # Resource Manager creates only a key's first version and never changes
    # it. A rotation (a new version) goes through the vault's data plane from
    # inside the VNet; then set the cluster's key id to the new version.
    ignore_changes = [body]
  }
}

# The Redis URL, which Terraform builds (key percent-encoded): written again
# whenever it changes, e.g. after a key rotation.
resource "azapi_resource" "redis_address" {
  body = {
    properties = {
      contentType = "text/plain"
      value       = var.redis_address
    }
  }
  name      = "redis-address"
  parent_id = module.avm_res_keyvault_vault.resource_id
  type      = "Microsoft.KeyVault/vaults/secrets@2023-07-01"
}

# Secrets an operator sets (API keys, admin token, SAS tokens). Terraform
# creates each one once with a placeholder so the apps' secret-scoped role
# assignments can exist before the values do, and never touches the value
# again.
resource "azapi_resource" "operator_secret" {
  for_each = var.operator_secret_names

  body = {
    properties = {
      contentType = "text/plain"
      value       = "unset: write this secret as in docs/deploy/02-infrastructure.md"
    }
  }
  name      = each.key
  parent_id = module.avm_res_keyvault_vault.resource_id
  type      = "Microsoft.KeyVault/vaults/secrets@2023-07-01"

  lifecycle {
    ignore_changes = [body]
  }
}
