locals {
  # One identity per workload, federated with its Kubernetes service account.
  workloads = {
    api = {
      # Storage Blob Data Reader would be enough to read results; the API reads
      # through a read-only SAS today, the role is there for Entra ID tokens.
      blob_role = "Storage Blob Data Reader"
    }
    worker = {
      blob_role = "Storage Blob Data Contributor"
    }
  }
  github_subjects = merge(
    { for b in var.github_branches : "branch-${b}" => "repo:${var.github_repository}:ref:refs/heads/${b}" },
    { for e in var.github_environments : "environment-${e}" => "repo:${var.github_repository}:environment:${e}" },
  )
}

resource "azurerm_user_assigned_identity" "workload" {
  for_each = local.workloads

  location            = var.location
  name                = "id-${var.name}-${each.key}"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "workload" {
  for_each = local.workloads

  audience  = ["api://AzureADTokenExchange"]
  issuer    = var.aks_oidc_issuer_url
  name      = "kubernetes-${var.kubernetes_namespace}-${each.key}"
  parent_id = azurerm_user_assigned_identity.workload[each.key].id
  subject   = "system:serviceaccount:${var.kubernetes_namespace}:${each.key}"
}

# Key Vault Secrets User on the vault: role assignments on single secrets
# need the secrets to exist first, and they are written after Terraform by an
# operator (docs/deploy/02-infrastructure.md). The vault holds only this
# platform's secrets; each SecretProviderClass names the secrets it mounts.
resource "azurerm_role_assignment" "workload_secrets" {
  for_each = local.workloads

  principal_id         = azurerm_user_assigned_identity.workload[each.key].principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Key Vault Secrets User"
  scope                = var.key_vault_id
}

resource "azurerm_role_assignment" "workload_blob" {
  for_each = local.workloads

  principal_id         = azurerm_user_assigned_identity.workload[each.key].principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = each.value.blob_role
  scope                = var.results_container_scope_id
}
