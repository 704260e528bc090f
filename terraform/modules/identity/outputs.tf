output "api_client_id" {
  description = "Client id of the API's identity."
  value       = azurerm_user_assigned_identity.workload["api"].client_id
}

output "api_principal_id" {
  description = "Principal id of the API's identity."
  value       = azurerm_user_assigned_identity.workload["api"].principal_id
}

output "github_actions_client_id" {
  description = "Client id of the CI identity."
  value       = azurerm_user_assigned_identity.github.client_id
}

output "worker_client_id" {
  description = "Client id of the worker's identity."
  value       = azurerm_user_assigned_identity.workload["worker"].client_id
}

output "worker_principal_id" {
  description = "Principal id of the worker's identity."
  value       = azurerm_user_assigned_identity.workload["worker"].principal_id
}
