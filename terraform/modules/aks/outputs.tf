output "cluster_id" {
  description = "Resource id of the cluster."
  value       = azurerm_kubernetes_cluster.this.id
}

output "cluster_name" {
  description = "Name of the cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "control_plane_principal_id" {
  description = "Principal id of the control plane's user-assigned identity."
  value       = azurerm_user_assigned_identity.control_plane.principal_id
}

output "kubelet_object_id" {
  description = "Object id of the kubelet identity (pulls images from the registry)."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
}

output "node_resource_group" {
  description = "Name of the resource group AKS manages for the nodes."
  value       = azurerm_kubernetes_cluster.this.node_resource_group
}

output "oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster (workload identity)."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}
