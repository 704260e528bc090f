output "etcd_kms_key_id" {
  description = "Versioned id of the etcd KMS key, or null when KMS is off."
  value       = var.etcd_kms_key_enabled ? module.avm_res_keyvault_vault.keys_resource_ids["etcd"].id : null
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
