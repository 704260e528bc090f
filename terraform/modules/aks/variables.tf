variable "edge_resource_group_id" {
  type        = string
  description = "Resource id of the resource group holding the edge's public IP; the control plane identity gets Network Contributor on it."
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Resource id of the Log Analytics workspace for Container Insights."
}

variable "name" {
  type        = string
  description = "Name of the cluster; also its DNS prefix."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "subnet_id" {
  type        = string
  description = "Resource id of the AKS subnet (nodes and pods, Azure CNI)."
}

variable "tenant_id" {
  type        = string
  description = "Entra ID tenant for Azure AD integration."
}

variable "admin_group_object_ids" {
  type        = list(string)
  default     = []
  description = "Entra ID groups with cluster-admin through Azure AD integration."
  nullable    = false
}

variable "api_server_subnet_id" {
  type        = string
  default     = null
  description = "Resource id of the subnet delegated to the API server; used with api_server_vnet_integration_enabled."
}

variable "api_server_vnet_integration_enabled" {
  type        = bool
  default     = false
  description = "Project the API server into api_server_subnet_id (API server VNet integration). Needed by KMS with a private vault; once on, AKS cannot turn it off."
  nullable    = false

  validation {
    condition     = !var.api_server_vnet_integration_enabled || var.api_server_subnet_id != null
    error_message = "API server VNet integration needs api_server_subnet_id (a subnet delegated to Microsoft.ContainerService/managedClusters)."
  }
}

variable "availability_zones" {
  type        = list(string)
  default     = []
  description = "Zones for both node pools; empty for no zones (free subscriptions)."
  nullable    = false
}

variable "dns_service_ip" {
  type        = string
  default     = "172.16.0.10"
  description = "Cluster DNS service IP, inside `service_cidr`."
  nullable    = false
}

variable "etcd_kms_enabled" {
  type        = bool
  default     = false
  description = "Encrypt etcd with the Key Vault key etcd_kms_key_id (AKS KMS, private vault)."
  nullable    = false

  validation {
    condition     = !var.etcd_kms_enabled || var.api_server_vnet_integration_enabled
    error_message = "KMS with a private Key Vault works only with API server VNet integration: set api_server_vnet_integration_enabled = true (and api_server_subnet_id)."
  }
}

variable "etcd_kms_key_id" {
  type        = string
  default     = null
  description = "Versioned URL of the Key Vault key that encrypts etcd; read only when etcd_kms_enabled is true."
}

variable "etcd_kms_key_resource_id" {
  type        = string
  default     = null
  description = "Resource manager id of that key (scope of Key Vault Crypto User); read only when etcd_kms_enabled is true."
}

variable "key_vault_id" {
  type        = string
  default     = null
  description = "Resource id of the Key Vault that holds the KMS key (scope of Key Vault Contributor, which lets AKS create its private endpoint to the vault); read only when etcd_kms_enabled is true."
}

variable "kubernetes_version" {
  type        = string
  default     = null
  description = "Kubernetes version; null takes the region's default."
}

variable "max_pods" {
  type        = number
  default     = 30
  description = "Pods per node. With Azure CNI each node reserves this many subnet IPs plus one, which bounds how far the pools can scale in a /24."
  nullable    = false
}

variable "outbound_type" {
  type        = string
  default     = "loadBalancer"
  description = "Cluster egress: `loadBalancer` or `userAssignedNATGateway` (NAT gateway on the subnet)."
  nullable    = false

  validation {
    condition     = contains(["loadBalancer", "userAssignedNATGateway"], var.outbound_type)
    error_message = "The outbound_type must be `loadBalancer` or `userAssignedNATGateway`."
  }
}

variable "service_cidr" {
  type        = string
  default     = "172.16.0.0/16"
  description = "Kubernetes service range; must not overlap the virtual network."
  nullable    = false
}

variable "sku_tier" {
  type        = string
  default     = "Free"
  description = "Control plane tier: `Free`, `Standard` or `Premium`."
  nullable    = false
}

variable "system_node_pool" {
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
The system node pool.

- `max_count` - Upper autoscaler bound.
- `min_count` - Lower autoscaler bound.
- `vm_size` - VM size.
DESCRIPTION
  nullable    = false

  validation {
    condition     = var.system_node_pool.min_count >= 1 && var.system_node_pool.min_count <= var.system_node_pool.max_count
    error_message = "The system pool needs 1 <= min_count <= max_count."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}

variable "wasm_node_pool" {
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
- `vm_size` - VM size.
DESCRIPTION
  nullable    = false

  validation {
    condition     = var.wasm_node_pool.min_count >= 0 && var.wasm_node_pool.min_count <= var.wasm_node_pool.max_count
    error_message = "The Wasm pool needs 0 <= min_count <= max_count."
  }
}
