resource "azurerm_container_registry" "this" {
  # checkov:skip=CKV_AZURE_139:Basic has no private endpoints and GitHub-hosted runners push over the internet; acr_premium_enabled turns public access off.
  # checkov:skip=CKV_AZURE_163:Image scanning is Microsoft Defender for Containers, a subscription-level plan, not a registry setting.
  # checkov:skip=CKV_AZURE_164:Content trust (Premium only) is being retired by Azure; image signing belongs in CI (future work).
  # checkov:skip=CKV_AZURE_165:The platform runs in one region; geo-replication is Premium only.
  # checkov:skip=CKV_AZURE_166:Quarantine is Premium only and needs a scanner that releases images; not used.
  # checkov:skip=CKV_AZURE_233:Zone redundancy is Premium only; dev uses Basic.
  # checkov:skip=CKV_AZURE_237:Dedicated data endpoints are Premium only.
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
