variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Name of the storage account (3-24 lowercase letters and digits, globally unique)."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.name))
    error_message = "The storage account name must be 3-24 lowercase letters or digits."
  }
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Subnet for the blob private endpoint."
}

variable "resource_group_id" {
  type        = string
  description = "Resource id of the resource group (the AVM module's `parent_id`)."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group (private DNS zone)."
}

variable "virtual_network_id" {
  type        = string
  description = "Virtual network the private DNS zone is linked to."
}

variable "container_name" {
  type        = string
  default     = "results"
  description = "Blob container for job results."
  nullable    = false
}

variable "enable_telemetry" {
  type        = bool
  default     = false
  description = "Whether the AVM module reports usage telemetry."
  nullable    = false
}

variable "replication_type" {
  type        = string
  default     = "LRS"
  description = "Replication: `LRS`, `ZRS`, `GRS`, `GZRS`, `RAGRS` or `RAGZRS`."
  nullable    = false

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"], var.replication_type)
    error_message = "The replication_type must be one of LRS, ZRS, GRS, GZRS, RAGRS, RAGZRS."
  }
}

variable "results_retention_days" {
  type        = number
  default     = 30
  description = "Delete results this many days after their last modification."
  nullable    = false
}

variable "shared_access_key_enabled" {
  type        = bool
  default     = true
  description = "Whether Shared Key (and so account-key SAS) is allowed. The Spin apps use container SAS tokens."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
