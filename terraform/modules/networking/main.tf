# https://registry.terraform.io/modules/Azure/avm-res-network-virtualnetwork/azurerm/0.22.2
module "avm_res_network_virtualnetwork" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact version; registry sources cannot take a commit hash.
  source  = "Azure/avm-res-network-virtualnetwork/azurerm"
  version = "0.22.2"

  address_space    = [var.address_space]
  enable_telemetry = var.enable_telemetry
  location         = var.location
  name             = "vnet-${var.name}"
  parent_id        = var.resource_group_id
  subnets = {
    aks = {
      address_prefixes                = [var.aks_subnet_prefix]
      default_outbound_access_enabled = false
      name                            = "snet-aks"
      nat_gateway                     = var.nat_gateway_enabled ? { id = azurerm_nat_gateway.this[0].id } : null
      network_security_group          = { id = azurerm_network_security_group.aks.id }
    }
    private_endpoints = {
      address_prefixes                = [var.private_endpoint_subnet_prefix]
      default_outbound_access_enabled = false
      name                            = "snet-private-endpoints"
      network_security_group          = { id = azurerm_network_security_group.private_endpoints.id }
      # Apply the NSG below to private endpoint traffic too.
      private_endpoint_network_policies = "Enabled"
    }
  }
  tags = var.tags
}
