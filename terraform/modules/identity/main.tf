locals {
  # One identity per workload, federated with its Kubernetes service account.
  workloads = {
    api = {
      # Storage Blob Data Reader would be enough to read results; the API reads
      # through a read-only SAS today, the role is there for Entra ID tokens.
      blob_role = "Storage Blob Data Reader"
      # The secrets kubernetes/base/secret-provider-class-api.yaml mounts.
      secrets = ["admin-token", "api-keys", "blob-sas-read", "redis-address"]
    }
    worker = {
      blob_role = "Storage Blob Data Contributor"
      # The secrets kubernetes/base/secret-provider-class-worker.yaml mounts.
      secrets = ["blob-sas-write", "redis-address"]
    }
  }
  # One role assignment per (workload, secret), keyed "api/api-keys".
  workload_secrets = merge([
    for workload, spec in local.workloads : {
      for secret in spec.secrets : "${workload}/${secret}" => {
        secret   = secret
        workload = workload
      }
    }
  ]...)
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

# Key Vault Secrets User on each secret the workload mounts, not on the vault:
# the worker cannot read the API keys or the admin token. Terraform creates
# every one of these secrets (modules/keyvault), so the scopes exist.
resource "azurerm_role_assignment" "workload_secrets" {
  for_each = local.workload_secrets

  principal_id         = azurerm_user_assigned_identity.workload[each.value.workload].principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Key Vault Secrets User"
  scope                = var.key_vault_secret_ids[each.value.secret]
}

resource "azurerm_role_assignment" "workload_blob" {
  for_each = local.workloads

  principal_id         = azurerm_user_assigned_identity.workload[each.key].principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = each.value.blob_role
  scope                = var.results_container_scope_id
}
