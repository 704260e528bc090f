terraform {
  required_version = ">= 1.12.0, < 2.0.0"

  required_providers {
    # The AVM virtual network module is built on azapi; the others on azurerm.
    azapi = {
      source  = "Azure/azapi"
      version = "2.13.0"
    }
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "4.68.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }

  # Partial configuration: the values come from
  # environments/<env>/backend.hcl at `terraform init -backend-config=...`.
  backend "azurerm" {}
}
