variable "environment" {
  type        = string
  description = "Short environment name (`dev` or `prod`); used in resource names and tags."

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "The environment must be `dev` or `prod`."
  }
}

variable "github_repository" {
  type        = string
  description = "The GitHub repository (`owner/name`) whose Actions runs may sign in as the CI identity."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "The github_repository must look like `owner/name`."
  }
}

variable "location" {
  type        = string
  description = "Azure region for every resource, e.g. `swedencentral`. See docs/deploy/01-prerequisites.md for regions that work on free subscriptions."
}

variable "acr_premium_enabled" {
  type        = bool
  default     = false
  description = "Production enhancement: use the Premium registry SKU with public access off and a private endpoint. Image pushes then need a runner inside the virtual network."
  nullable    = false
}

variable "aks_admin_group_object_ids" {
  type        = list(string)
  default     = []
  description = "Entra ID group object ids that get cluster-admin through Azure AD integration (in addition to Azure RBAC role assignments)."
  nullable    = false
}

variable "aks_availability_zones" {
  type        = list(string)
  default     = []
  description = "Availability zones for both node pools and the edge's public IP, e.g. `[\"1\", \"2\", \"3\"]` in prod. Leave empty where the subscription or region has no zones (free subscriptions)."
  nullable    = false
}

variable "aks_cluster_admin_principal_ids" {
  type        = map(string)
  default     = {}
  description = "Principals (object ids, keyed by a static name) that get Azure Kubernetes Service RBAC Cluster Admin on the cluster, e.g. `{ alice = \"<object id>\" }`. Named here because Terraform grants nothing to whoever happens to run it."
  nullable    = false
}

variable "aks_kubernetes_version" {
  type        = string
  default     = null
  description = "Kubernetes version (`1.33`); null takes the region's default version."
}

variable "aks_sku_tier" {
  type        = string
  default     = "Free"
  description = "AKS control plane tier: `Free` (no uptime SLA) or `Standard`."
  nullable    = false

  validation {
    condition     = contains(["Free", "Standard", "Premium"], var.aks_sku_tier)
    error_message = "The aks_sku_tier must be `Free`, `Standard` or `Premium`."
  }
}

variable "aks_system_node_pool" {
  type = object({
    max_count = number
    min_count = number
    vm_size   = string
  })
  default = {
    max_count = 2
    min_count = 1
    vm_size   = "Standard_B2s"
  }
  description = <<DESCRIPTION
The system node pool (cluster add-ons, ingress-nginx, SpinKube operator).

- `max_count` - Upper autoscaler bound.
- `min_count` - Lower autoscaler bound.
- `vm_size` - VM size, e.g. `Standard_B2s` (dev) or `Standard_D4s_v5` (prod).
DESCRIPTION
  nullable    = false
}

variable "aks_wasm_node_pool" {
  type = object({
    max_count = number
    min_count = number
    vm_size   = string
  })
  default = {
    max_count = 2
    min_count = 1
    vm_size   = "Standard_B2s"
  }
  description = <<DESCRIPTION
The user node pool for Spin (Wasm) workloads, labelled `spin=true`.

- `max_count` - Upper autoscaler bound.
- `min_count` - Lower autoscaler bound.
- `vm_size` - VM size, e.g. `Standard_B2s` (dev) or `Standard_D4s_v5` (prod).
DESCRIPTION
  nullable    = false
}

variable "alert_email_addresses" {
  type        = map(string)
  default     = {}
  description = "Who the alert action group e-mails, keyed by a short static name: `{ oncall = \"oncall@example.com\" }`."
  nullable    = false
}

variable "edge_dns_label" {
  type        = string
  default     = null
  description = "DNS label of the edge's static public IP (`<label>.<region>.cloudapp.azure.com`); null takes `<prefix>-<env>-<suffix>`."
}

variable "enable_telemetry" {
  type        = bool
  default     = false
  description = "Whether the Azure Verified Modules report usage telemetry to Microsoft."
  nullable    = false
}

variable "etcd_kms_enabled" {
  type        = bool
  default     = false
  description = "Encrypt Kubernetes Secrets in etcd with a Key Vault key (AKS KMS, private vault). Turns on API server VNet integration, which AKS cannot turn off again. The CSI driver syncs Key Vault secrets into Kubernetes Secrets because SpinApp variables can only reference Secrets; KMS limits what a stolen etcd backup reveals. See terraform/README.md before turning it on."
  nullable    = false
}

variable "github_branches" {
  type        = list(string)
  default     = ["main", "develop"]
  description = "Branches whose workflow runs may sign in as the CI identity (subject `repo:<repo>:ref:refs/heads/<branch>`)."
  nullable    = false
}

variable "github_environments" {
  type        = list(string)
  default     = ["dev", "dev-push", "prod", "prod-push"]
  description = "GitHub environments whose jobs may sign in as the CI identity (subject `repo:<repo>:environment:<name>`): the Deploy job runs in `<env>`, the Push job in `<env>-push`."
  nullable    = false
}

variable "key_vault_secrets_officer_principal_ids" {
  type        = map(string)
  default     = {}
  description = "Principals (object ids, keyed by a static name) that may read and write Key Vault secrets through the vault's data plane (Key Vault Secrets Officer). Not needed for the runbook, which writes secrets through Azure Resource Manager."
  nullable    = false
}

variable "managed_redis" {
  type = object({
    high_availability_enabled = bool
    sku_name                  = string
  })
  default = {
    high_availability_enabled = false
    sku_name                  = "Balanced_B0"
  }
  description = <<DESCRIPTION
Azure Managed Redis size (redis_mode = "azure-managed").

- `high_availability_enabled` - Replicate to a second node (SLA); dev runs without.
- `sku_name` - `Balanced_B0` (0.5 GB, dev), `Balanced_B1` (1 GB, prod) or larger.
DESCRIPTION
  nullable    = false
}

variable "name_prefix" {
  type        = string
  default     = "jobs"
  description = "Short prefix for resource names (lowercase letters and digits, 2-8 characters)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.name_prefix))
    error_message = "The name_prefix must be 2-8 lowercase letters or digits and start with a letter."
  }
}

variable "nat_gateway_enabled" {
  type        = bool
  default     = false
  description = "Production enhancement: send cluster egress through a NAT gateway with a static public IP instead of the load balancer."
  nullable    = false
}

variable "redis_mode" {
  type        = string
  default     = "azure-managed"
  description = "Where the job queue's Redis runs: `azure-managed` (Azure Managed Redis behind a private endpoint) or `in-cluster` (no Azure resource; the Kubernetes manifests run Redis as the Service `redis` in `jobs-platform`). Either way Terraform writes the URL to the Key Vault secret `redis-address`."
  nullable    = false

  validation {
    condition     = contains(["azure-managed", "in-cluster"], var.redis_mode)
    error_message = "The redis_mode must be `azure-managed` or `in-cluster` (Azure Cache for Redis takes no new instances)."
  }
}

variable "results_retention_days" {
  type        = number
  default     = 30
  description = "Delete job results in the `results` container this many days after they were last written."
  nullable    = false

  validation {
    condition     = var.results_retention_days >= 1 && floor(var.results_retention_days) == var.results_retention_days
    error_message = "The results_retention_days must be a whole number of days, at least 1."
  }
}

variable "storage_replication_type" {
  type        = string
  default     = "LRS"
  description = "Replication of the results storage account: `LRS` (dev) or `ZRS`/`GZRS` (prod)."
  nullable    = false
}

variable "storage_shared_access_key_enabled" {
  type        = bool
  default     = true
  description = "Whether the results storage account accepts Shared Key. The Spin apps reach Blob Storage with container SAS tokens signed by the account key (a user-delegation SAS lives 7 days at most); set false once they use Entra ID tokens. See terraform/README.md."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags added to every resource, on top of `environment` and `project`."
  nullable    = false
}
