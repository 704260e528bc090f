# The edge's static public IP, in a resource group of its own. The public
# Gateway's Service (NGINX Gateway Fabric, type LoadBalancer) takes this IP by
# name with the annotations
#   service.beta.kubernetes.io/azure-load-balancer-resource-group: <resource group>
#   service.beta.kubernetes.io/azure-pip-name: <name>
# so the address outlives the cluster and its Service. The AKS cloud provider
# finds the IP by listing the public IPs of that resource group, so the cluster
# identity needs read and join rights on the resource group, not only on the
# IP: the aks module grants Network Contributor on this group, which holds
# nothing else.
resource "azurerm_resource_group" "this" {
  location = var.location
  name     = "rg-${var.name}-edge"
  tags     = var.tags
}

resource "azurerm_public_ip" "this" {
  allocation_method   = "Static"
  domain_name_label   = var.dns_label
  location            = var.location
  name                = "pip-${var.name}-edge"
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "Standard"
  tags                = var.tags
  zones               = length(var.zones) > 0 ? var.zones : null
}
