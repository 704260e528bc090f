# The five alert rules of the platform design. Azure severity 0 = critical,
# 2 = warning.

# Node CPU above 80% for 5 minutes (AKS platform metric).
resource "azurerm_monitor_metric_alert" "node_cpu" {
  description         = "Node CPU above 80% for 5 minutes."
  frequency           = "PT1M"
  name                = "alert-${var.name}-node-cpu"
  resource_group_name = var.resource_group_name
  scopes              = [var.aks_cluster_id]
  severity            = 2
  tags                = var.tags
  window_size         = "PT5M"

  action {
    action_group_id = azurerm_monitor_action_group.this.id
  }
  criteria {
    aggregation      = "Average"
    metric_name      = "node_cpu_usage_percentage"
    metric_namespace = "Microsoft.ContainerService/managedClusters"
    operator         = "GreaterThan"
    threshold        = 80
  }
}

# Node memory (working set) above 85% for 5 minutes.
resource "azurerm_monitor_metric_alert" "node_memory" {
  description         = "Node memory working set above 85% for 5 minutes."
  frequency           = "PT1M"
  name                = "alert-${var.name}-node-memory"
  resource_group_name = var.resource_group_name
  scopes              = [var.aks_cluster_id]
  severity            = 2
  tags                = var.tags
  window_size         = "PT5M"

  action {
    action_group_id = azurerm_monitor_action_group.this.id
  }
  criteria {
    aggregation      = "Average"
    metric_name      = "node_memory_working_set_percentage"
    metric_namespace = "Microsoft.ContainerService/managedClusters"
    operator         = "GreaterThan"
    threshold        = 85
  }
}

# A pod restarted more than 5 times in 10 minutes (crash loop).
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "pod_restart_loop" {
  description          = "A pod in ${var.workload_namespace} restarted more than 5 times in 10 minutes."
  evaluation_frequency = "PT5M"
  location             = var.location
  name                 = "alert-${var.name}-pod-restart-loop"
  resource_group_name  = var.resource_group_name
  scopes               = [module.avm_res_operationalinsights_workspace.resource_id]
  severity             = 0
  tags                 = var.tags
  window_duration      = "PT10M"

  action {
    action_groups = [azurerm_monitor_action_group.this.id]
  }
  criteria {
    operator                = "GreaterThan"
    query                   = <<-KQL
      KubePodInventory
      | where Namespace == "${var.workload_namespace}"
      | summarize Restarts = max(PodRestartCount) - min(PodRestartCount) by Name
      | where Restarts > 5
    KQL
    threshold               = 0
    time_aggregation_method = "Count"

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }
}

# A Deployment (SpinKube runs each SpinApp as one) has unavailable replicas:
# pods of a ReplicaSet that are not running and ready for 5 minutes.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "deployment_unavailable" {
  description          = "A Deployment in ${var.workload_namespace} has replicas that are not running for 5 minutes."
  evaluation_frequency = "PT5M"
  location             = var.location
  name                 = "alert-${var.name}-deployment-unavailable"
  resource_group_name  = var.resource_group_name
  scopes               = [module.avm_res_operationalinsights_workspace.resource_id]
  severity             = 0
  tags                 = var.tags
  window_duration      = "PT5M"

  action {
    action_groups = [azurerm_monitor_action_group.this.id]
  }
  criteria {
    operator                = "GreaterThan"
    query                   = <<-KQL
      KubePodInventory
      | where Namespace == "${var.workload_namespace}" and ControllerKind == "ReplicaSet"
      | summarize arg_max(TimeGenerated, PodStatus, ContainerStatus) by PodUid, ControllerName
      | where PodStatus != "Running" or ContainerStatus != "running"
      | summarize Unavailable = dcount(PodUid) by ControllerName
    KQL
    threshold               = 0
    time_aggregation_method = "Count"

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }
}

# More than 1% of requests through the edge (NGINX Gateway Fabric's NGINX)
# answered 5xx over 5 minutes, read from NGINX's access log (ContainerLogV2;
# the status follows the quoted request line in NGINX's default format).
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "edge_5xx" {
  description          = "Edge 5xx responses above 1% of requests for 5 minutes."
  evaluation_frequency = "PT5M"
  location             = var.location
  name                 = "alert-${var.name}-edge-5xx"
  resource_group_name  = var.resource_group_name
  scopes               = [module.avm_res_operationalinsights_workspace.resource_id]
  severity             = 2
  tags                 = var.tags
  window_duration      = "PT5M"

  action {
    action_groups = [azurerm_monitor_action_group.this.id]
  }
  criteria {
    metric_measure_column   = "ErrorPercent"
    operator                = "GreaterThan"
    query                   = <<-KQL
      ContainerLogV2
      | where PodNamespace == "${var.edge_namespace}" and ContainerName == "nginx"
      | extend Status = toint(extract(@'" ([1-5][0-9]{2}) ', 1, tostring(LogMessage)))
      | where isnotnull(Status)
      | summarize Total = count(), Errors = countif(Status >= 500)
      | where Total > 0
      | extend ErrorPercent = 100.0 * Errors / Total
    KQL
    threshold               = 1
    time_aggregation_method = "Maximum"

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }
}
