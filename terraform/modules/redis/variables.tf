variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Name of the instance (globally unique DNS name)."
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Subnet for the instance's private endpoint."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "virtual_network_id" {
  type        = string
  description = "Virtual network the private DNS zone is linked to."
}

variable "high_availability_enabled" {
  type        = bool
  default     = true
  description = "Replicate the database to a second node (SLA). Changing it replaces the instance."
  nullable    = false
}

variable "sku_name" {
  type        = string
  default     = "Balanced_B0"
  description = "Azure Managed Redis size, e.g. `Balanced_B0` (0.5 GB) or `Balanced_B1` (1 GB)."
  nullable    = false

  validation {
    condition     = can(regex("^(Balanced_B|ComputeOptimized_X|MemoryOptimized_M)[0-9]+$", var.sku_name))
    error_message = "The sku_name must be an in-memory Azure Managed Redis SKU such as `Balanced_B0` (Balanced, Compute Optimized or Memory Optimized)."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
