# Production: nodes across zones 1-3, a paid control plane tier with an
# uptime SLA, replicated Azure Managed Redis, a zone-redundant edge IP and
# zone-redundant storage.
environment       = "prod"
github_repository = "example-org/jobs-platform"
location          = "swedencentral"

acr_premium_enabled    = false
aks_availability_zones = ["1", "2", "3"]
aks_sku_tier           = "Standard"
aks_system_node_pool = {
  max_count = 3
  min_count = 2
  vm_size   = "Standard_D2s_v5"
}
aks_wasm_node_pool = {
  max_count = 5
  min_count = 2
  vm_size   = "Standard_D4s_v5"
}
etcd_kms_enabled    = false
github_branches     = ["main"]
github_environments = ["prod", "prod-push"]
managed_redis = {
  high_availability_enabled = true
  sku_name                  = "Balanced_B1"
}
nat_gateway_enabled      = false
redis_mode               = "azure-managed"
results_retention_days   = 30
storage_replication_type = "ZRS"
