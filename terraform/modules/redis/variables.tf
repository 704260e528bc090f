variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Name of the cache (globally unique DNS name)."
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Subnet for the cache's private endpoint."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "virtual_network_id" {
  type        = string
  description = "Virtual network the private DNS zone is linked to."
}

variable "sku" {
  type = object({
    capacity = number
    family   = string
    name     = string
  })
  default = {
    capacity = 0
    family   = "C"
    name     = "Basic"
  }
  description = <<DESCRIPTION
Cache size.

- `capacity` - Size within the family (0-6).
- `family` - `C` (Basic, Standard) or `P` (Premium).
- `name` - `Basic`, `Standard` or `Premium`.
DESCRIPTION
  nullable    = false

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.sku.name)
    error_message = "The sku.name must be Basic, Standard or Premium."
  }
  validation {
    condition     = (var.sku.name == "Premium") == (var.sku.family == "P")
    error_message = "Use family `P` with Premium and `C` with Basic or Standard."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
