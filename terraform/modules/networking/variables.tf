variable "address_space" {
  type        = string
  description = "Address space of the virtual network, e.g. `10.0.0.0/16`."
}

variable "aks_subnet_prefix" {
  type        = string
  description = "Prefix of the AKS subnet (nodes and, with Azure CNI, pods), e.g. `10.0.1.0/24`."
}

variable "api_server_subnet_prefix" {
  type        = string
  description = "Prefix of the API server subnet (API server VNet integration), at least a /28, e.g. `10.0.3.0/28`."
}

variable "edge_public_ip_address" {
  type        = string
  description = "The edge's static public IP address; the AKS subnet's NSG admits HTTP and HTTPS from the internet to it."
}

variable "location" {
  type        = string
  description = "Azure region."
}

variable "name" {
  type        = string
  description = "Base name (`<prefix>-<env>`) the resource names are built from."
}

variable "private_endpoint_subnet_prefix" {
  type        = string
  description = "Prefix of the private endpoint subnet, e.g. `10.0.2.0/24`."
}

variable "resource_group_id" {
  type        = string
  description = "Resource id of the resource group (the AVM module's `parent_id`)."
}

variable "resource_group_name" {
  type        = string
  description = "Name of the resource group."
}

variable "enable_telemetry" {
  type        = bool
  default     = false
  description = "Whether the AVM module reports usage telemetry."
  nullable    = false
}

variable "nat_gateway_enabled" {
  type        = bool
  default     = false
  description = "Create a NAT gateway with a static public IP and attach it to the AKS subnet."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags for every resource."
  nullable    = false
}
