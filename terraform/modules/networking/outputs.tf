output "aks_subnet_id" {
  description = "Resource id of the AKS subnet."
  value       = module.avm_res_network_virtualnetwork.subnets["aks"].resource_id
}

output "api_server_subnet_id" {
  description = "Resource id of the API server subnet (delegated to AKS)."
  value       = module.avm_res_network_virtualnetwork.subnets["apiserver"].resource_id
}

output "nat_gateway_id" {
  description = "Resource id of the NAT gateway, or null when it is off."
  value       = var.nat_gateway_enabled ? azurerm_nat_gateway.this[0].id : null
}

output "private_endpoint_subnet_id" {
  description = "Resource id of the private endpoint subnet."
  value       = module.avm_res_network_virtualnetwork.subnets["private_endpoints"].resource_id
}

output "virtual_network_id" {
  description = "Resource id of the virtual network."
  value       = module.avm_res_network_virtualnetwork.resource_id
}

output "virtual_network_name" {
  description = "Name of the virtual network."
  value       = module.avm_res_network_virtualnetwork.name
}
