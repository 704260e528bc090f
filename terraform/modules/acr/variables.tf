variable "kubelet_object_id" {
  type        = string
  description = "Object id of the AKS kubelet identity, which gets AcrPull."
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Name of the registry (5-50 letters and digits, globally unique)."

  validation {
    condition     = can(regex("^[a-zA-Z0-9]{5,50}$", var.name))
    error_message = "The registry name must be 5-50 letters or digits."
  }
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Subnet for the registry's private endpoint (Premium only)."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "virtual_network_id" {
  type        = string
  description = "Virtual network the private DNS zone is linked to (Premium only)."
}

variable "premium_enabled" {
  type        = bool
  default     = false
  description = "Premium SKU with public access off, a private endpoint and 30-day retention of untagged manifests."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
