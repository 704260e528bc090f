# AKS subnet. From the internet: HTTP and HTTPS to the edge's public IP only.
# The public Gateway's Service is an Azure Standard load balancer rule with
# floating IP, so packets reach the nodes still addressed to the public
# frontend IP: the rule matches that address, not the subnet's prefix. Port 80
# stays open for the HTTP-01 challenge and the redirect to HTTPS.
#
# The default rules still allow traffic inside the virtual network (which is
# what the internal Gateway's internal load balancer in this subnet needs:
# clients in the VNet reach its frontend IP on 80/443) and the Azure load
# balancer's health probes; everything else from the internet is denied.
resource "azurerm_network_security_group" "aks" {
  # checkov:skip=CKV_AZURE_160:Port 80 is open only to the edge's public IP, for the ACME HTTP-01 challenge and the redirect to HTTPS; the Gateway serves nothing else on it.
  location            = var.location
  name                = "nsg-${var.name}-aks"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  security_rule {
    access                     = "Allow"
    description                = "HTTP (ACME HTTP-01, redirect) and HTTPS from the internet to the edge's public IP."
    destination_address_prefix = var.edge_public_ip_address
    destination_port_ranges    = ["80", "443"]
    direction                  = "Inbound"
    name                       = "allow-edge-http-https-inbound"
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

# API server subnet (API server VNet integration): the rules AKS documents for
# it. Nodes reach the API server's internal load balancer on 443 and 4443, the
# Azure load balancer probes 9988; clients outside reach the public API server
# on 443 (authenticated with Entra ID, local accounts are off).
resource "azurerm_network_security_group" "api_server" {
  location            = var.location
  name                = "nsg-${var.name}-apiserver"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  security_rule {
    access                     = "Allow"
    description                = "Nodes to the API server."
    destination_address_prefix = var.api_server_subnet_prefix
    destination_port_ranges    = ["443", "4443"]
    direction                  = "Inbound"
    name                       = "allow-nodes-to-api-server"
    priority                   = 100
    protocol                   = "Tcp"
    source_address_prefix      = var.aks_subnet_prefix
    source_port_range          = "*"
  }
  security_rule {
    access                     = "Allow"
    description                = "Azure load balancer health probes of the API server."
    destination_address_prefix = var.api_server_subnet_prefix
    destination_port_range     = "9988"
    direction                  = "Inbound"
    name                       = "allow-load-balancer-probes"
    priority                   = 110
    protocol                   = "Tcp"
    source_address_prefix      = "AzureLoadBalancer"
    source_port_range          = "*"
  }
  security_rule {
    access                     = "Allow"
    description                = "kubectl and CI to the public API server endpoint."
    destination_address_prefix = var.api_server_subnet_prefix
    destination_port_range     = "443"
    direction                  = "Inbound"
    name                       = "allow-clients-to-api-server"
    priority                   = 120
    protocol                   = "Tcp"
    source_address_prefix      = "Internet"
    source_port_range          = "*"
  }
}

# Private endpoint subnet: only the AKS subnet may connect, and only to HTTPS
# (Key Vault, Blob Storage, registry) and Azure Managed Redis on 10000, where
# its database speaks the plaintext Redis protocol the Spin Redis trigger needs
# (spin issue 2448); this rule is what keeps that port inside the cluster's
# subnet.
resource "azurerm_network_security_group" "private_endpoints" {
  location            = var.location
  name                = "nsg-${var.name}-private-endpoints"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  security_rule {
    access                     = "Allow"
    description                = "AKS nodes and pods to the private endpoints: HTTPS, Azure Managed Redis (10000)."
    destination_address_prefix = var.private_endpoint_subnet_prefix
    destination_port_ranges    = ["443", "10000"]
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
