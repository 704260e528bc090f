# Development: one zone-less cluster on sizes a free or pay-as-you-go
# subscription allows, Azure Managed Redis Balanced B0 without replication,
# locally redundant storage.
environment       = "dev"
github_repository = "example-org/jobs-platform"
location          = "swedencentral"

aks_availability_zones = []
aks_sku_tier           = "Free"
aks_system_node_pool = {
  max_count = 2
  min_count = 1
  vm_size   = "Standard_B2s"
}
aks_wasm_node_pool = {
  max_count = 2
  min_count = 1
  vm_size   = "Standard_B2s"
}
github_branches     = ["develop"]
github_environments = ["dev", "dev-push"]
managed_redis = {
  high_availability_enabled = false
  sku_name                  = "Balanced_B0"
}
redis_mode               = "azure-managed"
results_retention_days   = 7
storage_replication_type = "LRS"
