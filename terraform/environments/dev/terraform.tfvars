# Development: one zone-less cluster on sizes a free or pay-as-you-go
# subscription allows, Redis Basic C0, locally redundant storage.
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
redis_sku = {
  capacity = 0
  family   = "C"
  name     = "Basic"
}
results_retention_days   = 7
storage_replication_type = "LRS"
