variable "location" {
  type        = string
  description = "Azure region."
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Log Analytics workspace that receives the vault's audit logs."
}

variable "name" {
  type        = string
  description = "Name of the Key Vault (3-24 characters, globally unique)."
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Subnet for the vault's private endpoint."
}

variable "redis_address" {
  type        = string
  description = "The Redis URL the apps connect with (`redis://:<password>@<host>:<port>`, password percent-encoded), stored as the secret `redis-address`."
  sensitive   = true
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "tenant_id" {
  type        = string
  description = "Entra ID tenant of the vault."
}

variable "virtual_network_id" {
  type        = string
  description = "Virtual network the private DNS zone is linked to."
}

variable "enable_telemetry" {
  type        = bool
  default     = false
  description = "Whether the AVM module reports usage telemetry."
  nullable    = false
}

variable "etcd_kms_key_enabled" {
  type        = bool
  default     = false
  description = "Create the RSA key AKS KMS uses to encrypt etcd (through Azure Resource Manager; the vault's data plane stays private)."
  nullable    = false
}

variable "operator_secret_names" {
  type        = set(string)
  default     = ["admin-token", "api-keys", "blob-sas-read", "blob-sas-write"]
  description = "Secrets whose values an operator writes. Terraform creates each with a placeholder value and then leaves the value alone."
  nullable    = false
}

variable "secrets_officer_principal_ids" {
  type        = map(string)
  default     = {}
  description = "Principals (object ids, keyed by a static name) that may read and write secrets through the data plane (Key Vault Secrets Officer). Empty by default: secrets are written through Azure Resource Manager."
  nullable    = false
}

variable "soft_delete_retention_days" {
  type        = number
  default     = 90
  description = "Days a deleted vault or secret stays recoverable (7-90)."
  nullable    = false

  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90
    error_message = "The soft_delete_retention_days must be between 7 and 90."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
