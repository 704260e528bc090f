# Container Insights with managed identity auth needs a data collection rule
# and its association with the cluster; the add-on alone collects nothing.
resource "azurerm_monitor_data_collection_rule" "container_insights" {
  location            = var.location
  name                = "dcr-${var.name}-container-insights"
  resource_group_name = var.resource_group_name
  tags                = var.tags

  data_flow {
    destinations = ["workspace"]
    streams      = ["Microsoft-ContainerInsights-Group-Default"]
  }
  data_sources {
    extension {
      extension_name = "ContainerInsights"
      extension_json = jsonencode({
        dataCollectionSettings = {
          enableContainerLogV2   = true
          interval               = "1m"
          namespaceFilteringMode = "Off"
        }
      })
      name    = "ContainerInsightsExtension"
      streams = ["Microsoft-ContainerInsights-Group-Default"]
    }
  }
  destinations {
    log_analytics {
      name                  = "workspace"
      workspace_resource_id = var.log_analytics_workspace_id
    }
  }
}

resource "azurerm_monitor_data_collection_rule_association" "container_insights" {
  data_collection_rule_id = azurerm_monitor_data_collection_rule.container_insights.id
  description             = "Container Insights for ${var.name}."
  name                    = "ContainerInsightsExtension"
  target_resource_id      = azurerm_kubernetes_cluster.this.id
}
