# Production enhancement (Premium only): the registry is reachable only through
# the virtual network. Pushes then need a runner inside it.
resource "azurerm_private_dns_zone" "registry" {
  count = var.premium_enabled ? 1 : 0

  name                = "privatelink.azurecr.io"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "registry" {
  count = var.premium_enabled ? 1 : 0

  name                  = "vnet-link"
  private_dns_zone_name = azurerm_private_dns_zone.registry[0].name
  registration_enabled  = false
  resource_group_name   = var.resource_group_name
  tags                  = var.tags
  virtual_network_id    = var.virtual_network_id
}

resource "azurerm_private_endpoint" "registry" {
  count = var.premium_enabled ? 1 : 0

  location            = var.location
  name                = "pe-${var.name}"
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [azurerm_private_dns_zone.registry[0].id]
  }
  private_service_connection {
    is_manual_connection           = false
    name                           = "psc-${var.name}"
    private_connection_resource_id = azurerm_container_registry.this.id
    subresource_names              = ["registry"]
  }
}
