variable "aks_cluster_id" {
  type        = string
  description = "Resource id of the AKS cluster the metric alerts watch."
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Base name (`<prefix>-<env>`) the resource names are built from."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "alert_email_addresses" {
  type        = map(string)
  default     = {}
  description = "E-mail receivers of the action group, keyed by a short static name."
  nullable    = false
}

variable "edge_namespace" {
  type        = string
  default     = "nginx-gateway"
  description = "Namespace of the NGINX pods of the edge Gateways (NGINX Gateway Fabric), whose access logs feed the 5xx alert."
  nullable    = false
}

variable "enable_telemetry" {
  type        = bool
  default     = false
  description = "Whether the AVM module reports usage telemetry."
  nullable    = false
}

variable "retention_in_days" {
  type        = number
  default     = 30
  description = "Days the workspace keeps data (30-730)."
  nullable    = false

  validation {
    condition     = var.retention_in_days >= 30 && var.retention_in_days <= 730
    error_message = "The retention_in_days must be between 30 and 730."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}

variable "workload_namespace" {
  type        = string
  default     = "jobs-platform"
  description = "Namespace of the platform's workloads (restart and availability alerts)."
  nullable    = false
}
