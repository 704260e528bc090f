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

variable "key_vault_secret_ids" {
  type        = map(string)
  description = "Resource manager ids of the application secrets, keyed by secret name; each workload gets Key Vault Secrets User on the ones it mounts."
  nullable    = false

  validation {
    condition     = length(setsubtract(["admin-token", "api-keys", "blob-sas-read", "blob-sas-write", "redis-address"], keys(var.key_vault_secret_ids))) == 0
    error_message = "The key_vault_secret_ids must name admin-token, api-keys, blob-sas-read, blob-sas-write and redis-address."
  }
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

variable "cluster_admin_principal_ids" {
  type        = map(string)
  default     = {}
  description = "Principals (object ids, keyed by a static name) that get Azure Kubernetes Service RBAC Cluster Admin and Cluster User on the cluster."
  nullable    = false
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
