output "action_group_id" {
  description = "Resource id of the alert action group."
  value       = azurerm_monitor_action_group.this.id
}

output "log_analytics_workspace_id" {
  description = "Resource id of the Log Analytics workspace."
  value       = module.avm_res_operationalinsights_workspace.resource_id
}
