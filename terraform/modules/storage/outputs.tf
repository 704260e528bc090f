output "blob_endpoint" {
  description = "Blob endpoint of the account (public cloud suffix), without a trailing slash."
  value       = "https://${var.name}.blob.core.windows.net"
}

output "container_name" {
  description = "Name of the results container."
  value       = var.container_name
}

output "container_scope_id" {
  description = "Resource manager id of the results container, the scope for its role assignments."
  value       = "${module.avm_res_storage_storageaccount.resource_id}/blobServices/default/containers/${var.container_name}"
}

output "storage_account_id" {
  description = "Resource id of the storage account."
  value       = module.avm_res_storage_storageaccount.resource_id
}

output "storage_account_name" {
  description = "Name of the storage account."
  value       = var.name
}
