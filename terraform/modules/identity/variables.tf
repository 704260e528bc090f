variable "aks_cluster_id" {
  type        = string
  description = "Resource id of the AKS cluster (scope of the CI identity's cluster roles)."
}

variable "aks_oidc_issuer_url" {
  type        = string
  description = "OIDC issuer URL of the cluster, trusted by the workload identities."
}

variable "container_registry_id" {
  type        = string
  description = "Resource id of the registry (scope of AcrPush for CI)."
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (`owner/name`) whose workflows may sign in as the CI identity."
}

variable "key_vault_id" {
  type        = string
  description = "Resource id of the Key Vault holding the application secrets."
}

variable "kubernetes_namespace" {
  type        = string
  description = "Namespace of the `api` and `worker` service accounts."
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Base name (`<prefix>-<env>`) the identity names are built from."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "results_container_scope_id" {
  type        = string
  description = "Resource manager id of the results blob container (scope of the Storage Blob Data roles)."
}

variable "deployer_cluster_admin_id" {
  type        = string
  default     = null
  description = "Object id that gets AKS RBAC Cluster Admin so the operator running Terraform can use kubectl; null for none."
}

variable "github_branches" {
  type        = list(string)
  default     = ["main", "develop"]
  description = "Branches trusted for the CI identity."
  nullable    = false
}

variable "github_environments" {
  type        = list(string)
  default     = ["dev", "dev-push", "prod", "prod-push"]
  description = "GitHub environments trusted for the CI identity."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
