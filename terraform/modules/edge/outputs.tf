output "fqdn" {
  description = "Fully qualified domain name of the public IP (`<label>.<region>.cloudapp.azure.com`)."
  value       = azurerm_public_ip.this.fqdn
}

output "ip_address" {
  description = "The static public IP address."
  value       = azurerm_public_ip.this.ip_address
}

output "public_ip_id" {
  description = "Resource id of the public IP."
  value       = azurerm_public_ip.this.id
}

output "public_ip_name" {
  description = "Name of the public IP (Service annotation `service.beta.kubernetes.io/azure-pip-name`)."
  value       = azurerm_public_ip.this.name
}

output "resource_group_id" {
  description = "Resource id of the edge resource group (scope of the cluster identity's Network Contributor role)."
  value       = azurerm_resource_group.this.id
}

output "resource_group_name" {
  description = "Name of the edge resource group (Service annotation `service.beta.kubernetes.io/azure-load-balancer-resource-group`)."
  value       = azurerm_resource_group.this.name
}
