# Production enhancement (off by default): predictable egress IP for calls to
# external APIs and webhooks. AKS uses outbound type `userAssignedNATGateway`.
resource "azurerm_public_ip" "nat" {
  count = var.nat_gateway_enabled ? 1 : 0

  allocation_method   = "Static"
  location            = var.location
  name                = "pip-${var.name}-nat"
  resource_group_name = var.resource_group_name
  sku                 = "Standard"
  tags                = var.tags
}

resource "azurerm_nat_gateway" "this" {
  count = var.nat_gateway_enabled ? 1 : 0

  idle_timeout_in_minutes = 4
  location                = var.location
  name                    = "ng-${var.name}"
  resource_group_name     = var.resource_group_name
  sku_name                = "Standard"
  tags                    = var.tags
}

resource "azurerm_nat_gateway_public_ip_association" "this" {
  count = var.nat_gateway_enabled ? 1 : 0

  nat_gateway_id       = azurerm_nat_gateway.this[0].id
  public_ip_address_id = azurerm_public_ip.nat[0].id
}
