data "azurerm_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 5
  lower   = true
  numeric = true
  special = false
  upper   = false
}

resource "azurerm_resource_group" "this" {
  location = var.location
  name     = "rg-${local.base_name}"
  tags     = local.tags
}

module "networking" {
  source = "./modules/networking"

  location                       = azurerm_resource_group.this.location
  name                           = local.base_name
  resource_group_id              = azurerm_resource_group.this.id
  resource_group_name            = azurerm_resource_group.this.name
  address_space                  = "10.0.0.0/16"
  aks_subnet_prefix              = "10.0.1.0/24"
  enable_telemetry               = var.enable_telemetry
  nat_gateway_enabled            = var.nat_gateway_enabled
  private_endpoint_subnet_prefix = "10.0.2.0/24"
  tags                           = local.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  location              = azurerm_resource_group.this.location
  name                  = local.base_name
  resource_group_name   = azurerm_resource_group.this.name
  aks_cluster_id        = module.aks.cluster_id
  alert_email_addresses = var.alert_email_addresses
  enable_telemetry      = var.enable_telemetry
  retention_in_days     = var.environment == "prod" ? 90 : 30
  workload_namespace    = local.kubernetes_namespace
  tags                  = local.tags
}

module "keyvault" {
  source = "./modules/keyvault"

  location                   = azurerm_resource_group.this.location
  name                       = "kv-${local.flat_name}"
  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  virtual_network_id         = module.networking.virtual_network_id
  enable_telemetry           = var.enable_telemetry
  etcd_kms_key_enabled       = var.etcd_kms_enabled
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  secrets_officer_principal_ids = merge(var.key_vault_secrets_officer_principal_ids, {
    deployer = data.azurerm_client_config.current.object_id
  })
  soft_delete_retention_days = var.environment == "prod" ? 90 : 7
  tags                       = local.tags
}

module "aks" {
  source = "./modules/aks"

  location                   = azurerm_resource_group.this.location
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  name                       = "aks-${local.base_name}"
  resource_group_name        = azurerm_resource_group.this.name
  subnet_id                  = module.networking.aks_subnet_id
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  admin_group_object_ids     = var.aks_admin_group_object_ids
  availability_zones         = var.aks_availability_zones
  etcd_kms_key_id            = module.keyvault.etcd_kms_key_id
  key_vault_id               = module.keyvault.key_vault_id
  kubernetes_version         = var.aks_kubernetes_version
  outbound_type              = var.nat_gateway_enabled ? "userAssignedNATGateway" : "loadBalancer"
  sku_tier                   = var.aks_sku_tier
  system_node_pool           = var.aks_system_node_pool
  wasm_node_pool             = var.aks_wasm_node_pool
  tags                       = local.tags
}

module "acr" {
  source = "./modules/acr"

  location                   = azurerm_resource_group.this.location
  name                       = "acr${local.flat_name}"
  resource_group_name        = azurerm_resource_group.this.name
  kubelet_object_id          = module.aks.kubelet_object_id
  premium_enabled            = var.acr_premium_enabled
  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id
  virtual_network_id         = module.networking.virtual_network_id
  tags                       = local.tags
}

module "storage" {
  source = "./modules/storage"

  location                   = azurerm_resource_group.this.location
  name                       = "st${local.flat_name}"
  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id
  resource_group_name        = azurerm_resource_group.this.name
  virtual_network_id         = module.networking.virtual_network_id
  container_name             = local.results_container
  enable_telemetry           = var.enable_telemetry
  replication_type           = var.storage_replication_type
  results_retention_days     = var.results_retention_days
  shared_access_key_enabled  = var.storage_shared_access_key_enabled
  tags                       = local.tags
}

module "redis" {
  source = "./modules/redis"
  count  = var.redis_mode == "azure-cache" ? 1 : 0

  location                   = azurerm_resource_group.this.location
  name                       = "redis-${local.flat_name}"
  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id
  resource_group_name        = azurerm_resource_group.this.name
  virtual_network_id         = module.networking.virtual_network_id
  sku                        = var.redis_sku
  tags                       = local.tags
}

module "identity" {
  source = "./modules/identity"

  aks_cluster_id             = module.aks.cluster_id
  aks_oidc_issuer_url        = module.aks.oidc_issuer_url
  container_registry_id      = module.acr.registry_id
  github_repository          = var.github_repository
  key_vault_id               = module.keyvault.key_vault_id
  kubernetes_namespace       = local.kubernetes_namespace
  location                   = azurerm_resource_group.this.location
  name                       = local.base_name
  resource_group_name        = azurerm_resource_group.this.name
  results_container_scope_id = module.storage.container_scope_id
  deployer_cluster_admin_id  = data.azurerm_client_config.current.object_id
  github_branches            = var.github_branches
  github_environments        = var.github_environments
  tags                       = local.tags

  # The container role assignments need the container, not just the account.
  depends_on = [module.storage]
}
