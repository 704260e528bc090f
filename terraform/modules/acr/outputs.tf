output "login_server" {
  description = "Login server of the registry."
  value       = azurerm_container_registry.this.login_server
}

output "registry_id" {
  description = "Resource id of the registry."
  value       = azurerm_container_registry.this.id
}

output "registry_name" {
  description = "Name of the registry."
  value       = azurerm_container_registry.this.name
}
