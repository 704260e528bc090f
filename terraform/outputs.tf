output "acr_login_server" {
  description = "Registry login server that image references and CI pushes use (`<name>.azurecr.io`)."
  value       = module.acr.login_server
}

output "acr_name" {
  description = "Name of the container registry (for `az acr login --name`)."
  value       = module.acr.registry_name
}

output "aks_cluster_name" {
  description = "Name of the AKS cluster (for `az aks get-credentials`)."
  value       = module.aks.cluster_name
}

output "aks_oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster; the workload identity federated credentials trust it."
  value       = module.aks.oidc_issuer_url
}

output "api_identity_client_id" {
  description = "Client id of the API's managed identity; goes into the `api` ServiceAccount annotation `azure.workload.identity/client-id` and the SecretProviderClass."
  value       = module.identity.api_client_id
}

output "edge_fqdn" {
  description = "DNS name of the edge's static public IP (`<label>.<region>.cloudapp.azure.com`): point the platform's host names at it (CNAME) or use it directly."
  value       = module.edge.fqdn
}

output "edge_public_ip_address" {
  description = "The edge's static public IP address (the public Gateway's load balancer frontend)."
  value       = module.edge.ip_address
}

output "edge_public_ip_name" {
  description = "Name of the edge's public IP: Service annotation `service.beta.kubernetes.io/azure-pip-name` of the public Gateway."
  value       = module.edge.public_ip_name
}

output "edge_public_ip_resource_group" {
  description = "Resource group of the edge's public IP: Service annotation `service.beta.kubernetes.io/azure-load-balancer-resource-group` of the public Gateway."
  value       = module.edge.resource_group_name
}

output "github_actions_client_id" {
  description = "Client id of the CI identity; the GitHub variable `AZURE_CLIENT_ID` (OIDC sign-in, no secret)."
  value       = module.identity.github_actions_client_id
}

output "key_vault_name" {
  description = "Name of the Key Vault holding the application secrets (SecretProviderClass `keyvaultName`)."
  value       = module.keyvault.key_vault_name
}

output "key_vault_uri" {
  description = "URI of the Key Vault (`https://<name>.vault.azure.net/`)."
  value       = module.keyvault.key_vault_uri
}

output "location" {
  description = "Azure region of the platform."
  value       = azurerm_resource_group.this.location
}

output "log_analytics_workspace_id" {
  description = "Resource id of the Log Analytics workspace that Container Insights writes to."
  value       = module.monitoring.log_analytics_workspace_id
}

output "redis_hostname" {
  description = "Host name of Redis: Azure Managed Redis (resolves to its private endpoint inside the virtual network only) or, with redis_mode = \"in-cluster\", the in-cluster Service."
  value       = var.redis_mode == "azure-managed" ? module.redis[0].hostname : local.in_cluster_redis_host
}

output "redis_port" {
  description = "Plaintext Redis port the Spin Redis trigger uses: 10000 on Azure Managed Redis (reachable only from the AKS subnet), 6379 in the cluster."
  value       = var.redis_mode == "azure-managed" ? module.redis[0].port : 6379
}

output "resource_group_name" {
  description = "Name of the resource group that holds the platform."
  value       = azurerm_resource_group.this.name
}

output "results_container_name" {
  description = "Blob container the worker writes job results to."
  value       = module.storage.container_name
}

output "storage_account_name" {
  description = "Name of the results storage account (Spin variable `blob_account`)."
  value       = module.storage.storage_account_name
}

output "storage_blob_endpoint" {
  description = "Blob endpoint of the results storage account (Spin variable `blob_endpoint`); resolves to the private endpoint inside the virtual network."
  value       = module.storage.blob_endpoint
}

output "tenant_id" {
  description = "Entra ID tenant id (workload identity and SecretProviderClass `tenantId`, GitHub variable `AZURE_TENANT_ID`)."
  value       = data.azurerm_subscription.current.tenant_id
}

output "worker_identity_client_id" {
  description = "Client id of the worker's managed identity; goes into the `worker` ServiceAccount annotation and the SecretProviderClass."
  value       = module.identity.worker_client_id
}
