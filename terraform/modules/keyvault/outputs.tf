output "etcd_kms_key_id" {
  description = "Versioned URL of the etcd KMS key (`https://<vault>.vault.azure.net/keys/<name>/<version>`), or null when KMS is off."
  value       = var.etcd_kms_key_enabled ? azapi_resource.etcd_kms_key[0].output.properties.keyUriWithVersion : null
}

output "etcd_kms_key_resource_id" {
  description = "Resource manager id of the etcd KMS key (scope of the control plane's Key Vault Crypto User role), or null when KMS is off."
  value       = var.etcd_kms_key_enabled ? azapi_resource.etcd_kms_key[0].id : null
}

output "key_vault_id" {
  description = "Resource id of the vault."
  value       = module.avm_res_keyvault_vault.resource_id
}

output "key_vault_name" {
  description = "Name of the vault."
  value       = var.name
}

output "key_vault_uri" {
  description = "URI of the vault."
  value       = module.avm_res_keyvault_vault.uri
}

output "secret_resource_ids" {
  description = "Resource manager ids of the application secrets, keyed by secret name: the scopes of the apps' secret-scoped role assignments."
  value = merge(
    { for name, secret in azapi_resource.operator_secret : name => secret.id },
    { "redis-address" = azapi_resource.redis_address.id },
  )
}
