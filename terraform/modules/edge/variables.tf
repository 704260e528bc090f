variable "dns_label" {
  type        = string
  description = "DNS label of the public IP: the edge answers at `<label>.<region>.cloudapp.azure.com`. Lowercase letters, digits and hyphens, unique in the region."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,61}[a-z0-9]$", var.dns_label))
    error_message = "The dns_label must be 3-63 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Base name (`<prefix>-<env>`) the resource names are built from."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}

variable "zones" {
  type        = list(string)
  default     = []
  description = "Availability zones of the public IP, e.g. `[\"1\", \"2\", \"3\"]` (zone-redundant) in prod; empty for a regional IP where the region or subscription has no zones."
  nullable    = false
}
