# AKS subnet: from the internet only HTTPS to the ingress controller. The
# default rules still allow traffic inside the virtual network and the Azure
# load balancer's health probes, which AKS needs; everything else is denied.
resource "azurerm_network_security_group" "aks" {
  location            = var.location
  name                = "nsg-${var.name}-aks"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  security_rule {
    access                     = "Allow"
    description                = "HTTPS from the internet to the ingress controller."
    destination_address_prefix = var.aks_subnet_prefix
    destination_port_range     = "443"
    direction                  = "Inbound"
    name                       = "allow-https-inbound"
    priority                   = 100
    protocol                   = "Tcp"
    source_address_prefix      = "Internet"
    source_port_range          = "*"
  }
  security_rule {
    access                     = "Deny"
    description                = "Nothing else from the internet."
    destination_address_prefix = "*"
    destination_port_range     = "*"
    direction                  = "Inbound"
    name                       = "deny-internet-inbound"
    priority                   = 4000
    protocol                   = "*"
    source_address_prefix      = "Internet"
    source_port_range          = "*"
  }
}

# Private endpoint subnet: only the AKS subnet may connect, and only to HTTPS
# (Key Vault, Blob Storage, registry) and Redis. Redis 6379 is the non-TLS
# port the Spin Redis trigger needs (spin issue 2448); this rule is what keeps
# it inside the cluster's subnet.
resource "azurerm_network_security_group" "private_endpoints" {
  location            = var.location
  name                = "nsg-${var.name}-private-endpoints"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  security_rule {
    access                     = "Allow"
    description                = "AKS nodes and pods to the private endpoints: HTTPS, Redis (6379 plain, 6380 TLS)."
    destination_address_prefix = var.private_endpoint_subnet_prefix
    destination_port_ranges    = ["443", "6379", "6380"]
    direction                  = "Inbound"
    name                       = "allow-aks-to-private-endpoints"
    priority                   = 100
    protocol                   = "Tcp"
    source_address_prefix      = var.aks_subnet_prefix
    source_port_range          = "*"
  }
  security_rule {
    access                     = "Deny"
    description                = "Nothing else, from inside or outside the virtual network."
    destination_address_prefix = "*"
    destination_port_range     = "*"
    direction                  = "Inbound"
    name                       = "deny-all-inbound"
    priority                   = 4000
    protocol                   = "*"
    source_address_prefix      = "*"
    source_port_range          = "*"
  }
}
