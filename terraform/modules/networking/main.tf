# https://registry.terraform.io/modules/Azure/avm-res-network-virtualnetwork/azurerm/0.22.1
module "avm_res_network_virtualnetwork" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact version; registry sources cannot take a commit hash.
  source  = "Azure/avm-res-network-virtualnetwork/azurerm"
  version = "0.22.1"

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
      # The association's attribute, not the gateway's id: the subnet (and so
      # the cluster, whose egress it carries) waits until the gateway has its
      # public IP.
      nat_gateway            = var.nat_gateway_enabled ? { id = azurerm_nat_gateway_public_ip_association.this[0].nat_gateway_id } : null
      network_security_group = { id = azurerm_network_security_group.aks.id }
    }
    # API server VNet integration (used with etcd KMS on a private vault): the
    # API server's internal load balancer lives here. AKS requires the
    # delegation and at least a /28.
    apiserver = {
      address_prefixes                = [var.api_server_subnet_prefix]
      default_outbound_access_enabled = false
      delegations = [{
        name = "aks-api-server"
        service_delegation = {
          name = "Microsoft.ContainerService/managedClusters"
        }
      }]
      name                   = "snet-apiserver"
      network_security_group = { id = azurerm_network_security_group.api_server.id }
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
