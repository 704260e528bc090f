resource "azurerm_container_registry" "this" {
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  location                      = var.location
  name                          = var.name
  public_network_access_enabled = !var.premium_enabled
  resource_group_name           = var.resource_group_name
  retention_policy_in_days      = var.premium_enabled ? 30 : null
  sku                           = var.premium_enabled ? "Premium" : "Basic"
  tags                          = var.tags
}

# The kubelet identity pulls images; nothing else in the cluster can.
resource "azurerm_role_assignment" "kubelet_pull" {
  principal_id         = var.kubelet_object_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "AcrPull"
  scope                = azurerm_container_registry.this.id
}
