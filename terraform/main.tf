# The subscription's tenant, the same whichever identity runs Terraform. No
# value here may depend on that identity (azurerm_client_config.object_id): a
# plan made by one identity and applied by another would grant roles to the
# wrong one.
data "azurerm_subscription" "current" {}

resource "random_string" "suffix" {
  length  = 5
  lower   = true
  numeric = true
  special = false
  upper   = false
}

# Password of the in-cluster Redis (redis_mode = "in-cluster"): letters and
# digits only, so it needs no encoding in the URL and fits redis.conf as is.
resource "random_password" "in_cluster_redis" {
  count = var.redis_mode == "in-cluster" ? 1 : 0

  length  = 48
  special = false
}

resource "azurerm_resource_group" "this" {
  location = var.location
  name     = "rg-${local.base_name}"
  tags     = local.tags
}

module "edge" {
  source = "./modules/edge"

  dns_label = coalesce(var.edge_dns_label, "${local.base_name}-${random_string.suffix.result}")
  location  = azurerm_resource_group.this.location
  name      = local.base_name
  tags      = local.tags
  zones     = var.aks_availability_zones
}

module "networking" {
  source = "./modules/networking"

  address_space                  = "10.0.0.0/16"
  aks_subnet_prefix              = "10.0.1.0/24"
  api_server_subnet_prefix       = "10.0.3.0/28"
  edge_public_ip_address         = module.edge.ip_address
  location                       = azurerm_resource_group.this.location
  name                           = local.base_name
  resource_group_id              = azurerm_resource_group.this.id
  resource_group_name            = azurerm_resource_group.this.name
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
  edge_namespace        = local.edge_namespace
  enable_telemetry      = var.enable_telemetry
  retention_in_days     = var.environment == "prod" ? 90 : 30
  workload_namespace    = local.kubernetes_namespace
  tags                  = local.tags
}

module "keyvault" {
  source = "./modules/keyvault"

  location                      = azurerm_resource_group.this.location
  log_analytics_workspace_id    = module.monitoring.log_analytics_workspace_id
  name                          = "kv-${local.flat_name}"
  private_endpoint_subnet_id    = module.networking.private_endpoint_subnet_id
  redis_address                 = local.redis_address
  resource_group_name           = azurerm_resource_group.this.name
  tenant_id                     = data.azurerm_subscription.current.tenant_id
  virtual_network_id            = module.networking.virtual_network_id
  enable_telemetry              = var.enable_telemetry
  etcd_kms_key_enabled          = var.etcd_kms_enabled
  secrets_officer_principal_ids = var.key_vault_secrets_officer_principal_ids
  soft_delete_retention_days    = var.environment == "prod" ? 90 : 7
  tags                          = local.tags
}

module "aks" {
  source = "./modules/aks"

  edge_resource_group_id              = module.edge.resource_group_id
  location                            = azurerm_resource_group.this.location
  log_analytics_workspace_id          = module.monitoring.log_analytics_workspace_id
  name                                = "aks-${local.base_name}"
  resource_group_name                 = azurerm_resource_group.this.name
  subnet_id                           = module.networking.aks_subnet_id
  tenant_id                           = data.azurerm_subscription.current.tenant_id
  admin_group_object_ids              = var.aks_admin_group_object_ids
  api_server_subnet_id                = module.networking.api_server_subnet_id
  api_server_vnet_integration_enabled = var.etcd_kms_enabled
  availability_zones                  = var.aks_availability_zones
  etcd_kms_enabled                    = var.etcd_kms_enabled
  etcd_kms_key_id                     = module.keyvault.etcd_kms_key_id
  etcd_kms_key_resource_id            = module.keyvault.etcd_kms_key_resource_id
  key_vault_id                        = module.keyvault.key_vault_id
  kubernetes_version                  = var.aks_kubernetes_version
  outbound_type                       = var.nat_gateway_enabled ? "userAssignedNATGateway" : "loadBalancer"
  sku_tier                            = var.aks_sku_tier
  system_node_pool                    = var.aks_system_node_pool
  wasm_node_pool                      = var.aks_wasm_node_pool
  tags                                = local.tags
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
  resource_group_id          = azurerm_resource_group.this.id
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
  count  = var.redis_mode == "azure-managed" ? 1 : 0

  location                   = azurerm_resource_group.this.location
  name                       = "redis-${local.flat_name}"
  private_endpoint_subnet_id = module.networking.private_endpoint_subnet_id
  resource_group_name        = azurerm_resource_group.this.name
  virtual_network_id         = module.networking.virtual_network_id
  high_availability_enabled  = var.managed_redis.high_availability_enabled
  sku_name                   = var.managed_redis.sku_name
  tags                       = local.tags
}

module "identity" {
  source = "./modules/identity"

  aks_cluster_id              = module.aks.cluster_id
  aks_oidc_issuer_url         = module.aks.oidc_issuer_url
  container_registry_id       = module.acr.registry_id
  github_repository           = var.github_repository
  key_vault_secret_ids        = module.keyvault.secret_resource_ids
  kubernetes_namespace        = local.kubernetes_namespace
  location                    = azurerm_resource_group.this.location
  name                        = local.base_name
  resource_group_name         = azurerm_resource_group.this.name
  results_container_scope_id  = module.storage.container_scope_id
  cluster_admin_principal_ids = var.aks_cluster_admin_principal_ids
  github_branches             = var.github_branches
  github_environments         = var.github_environments
  tags                        = local.tags

  # The container role assignments need the container, not just the account.
  depends_on = [module.storage]
}
