# https://registry.terraform.io/modules/Azure/avm-res-operationalinsights-workspace/azurerm/0.5.1
module "avm_res_operationalinsights_workspace" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact version; registry sources cannot take a commit hash.
  source  = "Azure/avm-res-operationalinsights-workspace/azurerm"
  version = "0.5.1"

  enable_telemetry                                   = var.enable_telemetry
  location                                           = var.location
  log_analytics_workspace_internet_ingestion_enabled = true
  log_analytics_workspace_internet_query_enabled     = true
  # Agents sign in with managed identity; no workspace keys.
  log_analytics_workspace_local_authentication_enabled = false
  log_analytics_workspace_retention_in_days            = var.retention_in_days
  log_analytics_workspace_sku                          = "PerGB2018"
  name                                                 = "log-${var.name}"
  resource_group_name                                  = var.resource_group_name
  tags                                                 = var.tags
}

resource "azurerm_monitor_action_group" "this" {
  name                = "ag-${var.name}"
  resource_group_name = var.resource_group_name
  short_name          = substr(replace("ops${var.name}", "-", ""), 0, 12)
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = var.alert_email_addresses

    content {
      email_address           = email_receiver.value
      name                    = email_receiver.key
      use_common_alert_schema = true
    }
  }
}
