# GitHub Actions signs in with OIDC federation: no client secret exists.
resource "azurerm_user_assigned_identity" "github" {
  location            = var.location
  name                = "id-${var.name}-github-actions"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "github" {
  for_each = local.github_subjects

  audience  = ["api://AzureADTokenExchange"]
  issuer    = "https://token.actions.githubusercontent.com"
  name      = "github-${each.key}"
  parent_id = azurerm_user_assigned_identity.github.id
  subject   = each.value
}

resource "azurerm_role_assignment" "github_acr_push" {
  principal_id         = azurerm_user_assigned_identity.github.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "AcrPush"
  scope                = var.container_registry_id
}

# Data plane: apply manifests through Azure RBAC (local accounts are off).
resource "azurerm_role_assignment" "github_aks_rbac_admin" {
  principal_id         = azurerm_user_assigned_identity.github.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  scope                = var.aks_cluster_id
}

# Control plane: `az aks get-credentials` needs listClusterUserCredential.
resource "azurerm_role_assignment" "github_aks_user" {
  principal_id         = azurerm_user_assigned_identity.github.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  scope                = var.aks_cluster_id
}

# People (or groups) who administer the cluster with kubectl, named explicitly:
# never "whoever runs Terraform", which in CI is the apply identity, or the
# plan identity when a saved plan was made by another one.
resource "azurerm_role_assignment" "cluster_admin" {
  for_each = var.cluster_admin_principal_ids

  principal_id         = each.value
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  scope                = var.aks_cluster_id
}

resource "azurerm_role_assignment" "cluster_admin_user" {
  for_each = var.cluster_admin_principal_ids

  principal_id         = each.value
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  scope                = var.aks_cluster_id
}
