# The control plane runs as a user-assigned identity (not system-assigned) so
# its role assignments exist before the cluster does: Network Contributor on
# the subnets it manages (Azure CNI in a subnet we own; the API server subnet)
# and on the edge's resource group (the public Gateway's load balancer takes
# the static IP there), and, with KMS, the Key Vault roles.
resource "azurerm_user_assigned_identity" "control_plane" {
  location            = var.location
  name                = "id-${var.name}-control-plane"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_role_assignment" "control_plane_subnet" {
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Network Contributor"
  scope                = var.subnet_id
}

resource "azurerm_role_assignment" "control_plane_api_server_subnet" {
  count = var.api_server_vnet_integration_enabled ? 1 : 0

  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Network Contributor"
  scope                = var.api_server_subnet_id
}

# The cloud provider looks the edge IP up by listing the public IPs of its
# resource group, then joins it to the cluster's load balancer: read and join
# on that group, which holds only the edge IP.
resource "azurerm_role_assignment" "control_plane_edge" {
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Network Contributor"
  scope                = var.edge_resource_group_id
}

# KMS: encrypt and decrypt with the one key, and (private vault) let AKS
# create its private endpoint to the vault. Counted by the switch, a plan-time
# boolean, never by the key's id, which is known only after apply.
resource "azurerm_role_assignment" "control_plane_kms_key" {
  count = var.etcd_kms_enabled ? 1 : 0

  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Key Vault Crypto User"
  scope                = var.etcd_kms_key_resource_id
}

resource "azurerm_role_assignment" "control_plane_kms_private_link" {
  count = var.etcd_kms_enabled ? 1 : 0

  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
  role_definition_name = "Key Vault Contributor"
  scope                = var.key_vault_id
}

resource "azurerm_kubernetes_cluster" "this" {
  # checkov:skip=CKV_AZURE_6:CI deploys from GitHub-hosted runners without fixed IPs; the API server needs Entra ID sign-in (local accounts are off). Authorised ranges or a private cluster need self-hosted runners (future work).
  # checkov:skip=CKV_AZURE_115:Same as CKV_AZURE_6: a private API server needs a runner inside the virtual network.
  # checkov:skip=CKV_AZURE_117:OS disks use platform-managed keys; a disk encryption set needs a customer-managed key and its rotation process, not worth it for this platform yet.
  # checkov:skip=CKV_AZURE_168:Azure CNI gives every pod a subnet IP; with a /24 subnet, 30 pods per node is what lets both pools scale and surge.
  # checkov:skip=CKV_AZURE_170:Dev runs the Free control plane tier; prod sets aks_sku_tier = "Standard" in environments/prod/terraform.tfvars.
  # checkov:skip=CKV_AZURE_226:Standard_B2s (dev) has no cache or temp disk large enough for an ephemeral OS disk.
  # checkov:skip=CKV_AZURE_227:Encryption at host needs the EncryptionAtHost feature registered on the subscription, which free subscriptions may not allow; disks are encrypted at rest by the platform.
  automatic_upgrade_channel         = "patch"
  azure_policy_enabled              = true
  dns_prefix                        = var.name
  kubernetes_version                = var.kubernetes_version
  local_account_disabled            = true
  location                          = var.location
  name                              = var.name
  node_os_upgrade_channel           = "NodeImage"
  oidc_issuer_enabled               = true
  resource_group_name               = var.resource_group_name
  role_based_access_control_enabled = true
  sku_tier                          = var.sku_tier
  tags                              = var.tags
  workload_identity_enabled         = true

  azure_active_directory_role_based_access_control {
    admin_group_object_ids = var.admin_group_object_ids
    azure_rbac_enabled     = true
    tenant_id              = var.tenant_id
  }
  default_node_pool {
    auto_scaling_enabled         = true
    max_count                    = var.system_node_pool.max_count
    max_pods                     = var.max_pods
    min_count                    = var.system_node_pool.min_count
    name                         = "system"
    only_critical_addons_enabled = true
    os_disk_type                 = "Managed"
    os_sku                       = "Ubuntu"
    temporary_name_for_rotation  = "systemtmp"
    vm_size                      = var.system_node_pool.vm_size
    vnet_subnet_id               = var.subnet_id
    zones                        = length(var.availability_zones) > 0 ? var.availability_zones : null

    upgrade_settings {
      max_surge = "1"
    }
  }
  dynamic "api_server_access_profile" {
    # A private vault is reachable for KMS only through API server VNet
    # integration (Konnectivity is not supported for it).
    for_each = var.api_server_vnet_integration_enabled ? [var.api_server_subnet_id] : []

    content {
      subnet_id                           = api_server_access_profile.value
      virtual_network_integration_enabled = true
    }
  }
  identity {
    identity_ids = [azurerm_user_assigned_identity.control_plane.id]
    type         = "UserAssigned"
  }
  dynamic "key_management_service" {
    for_each = var.etcd_kms_enabled ? ["kms"] : []

    content {
      key_vault_key_id         = var.etcd_kms_key_id
      key_vault_network_access = "Private"
    }
  }
  key_vault_secrets_provider {
    secret_rotation_enabled  = true
    secret_rotation_interval = "2m"
  }
  network_profile {
    dns_service_ip     = var.dns_service_ip
    load_balancer_sku  = "standard"
    network_data_plane = "azure"
    network_plugin     = "azure"
    network_policy     = "calico"
    outbound_type      = var.outbound_type
    service_cidr       = var.service_cidr
  }
  oms_agent {
    log_analytics_workspace_id      = var.log_analytics_workspace_id
    msi_auth_for_monitoring_enabled = true
  }
  # The KEDA add-on (AKS-managed KEDA): the worker scales on the queue's length.
  workload_autoscaler_profile {
    keda_enabled = true
  }

  depends_on = [
    azurerm_role_assignment.control_plane_api_server_subnet,
    azurerm_role_assignment.control_plane_edge,
    azurerm_role_assignment.control_plane_kms_key,
    azurerm_role_assignment.control_plane_kms_private_link,
    azurerm_role_assignment.control_plane_subnet,
  ]

  lifecycle {
    ignore_changes = [
      # The autoscaler owns the node count.
      default_node_pool[0].node_count,
    ]
  }
}

# Spin workloads run here. runtime-class-manager installs containerd-shim-spin
# on nodes labelled `spin=true` (Ubuntu nodes, as in SpinKube's AKS guide). No taint: SpinApp (spin-operator 0.6.1) has no
# tolerations field, so a tainted pool could not run SpinApps at all.
resource "azurerm_kubernetes_cluster_node_pool" "wasm" {
  # checkov:skip=CKV_AZURE_168:Azure CNI gives every pod a subnet IP; with a /24 subnet, 30 pods per node is what lets both pools scale and surge.
  # checkov:skip=CKV_AZURE_227:Encryption at host needs the EncryptionAtHost feature registered on the subscription, which free subscriptions may not allow.
  auto_scaling_enabled  = true
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  max_count             = var.wasm_node_pool.max_count
  max_pods              = var.max_pods
  min_count             = var.wasm_node_pool.min_count
  mode                  = "User"
  name                  = "wasm"
  node_labels = {
    "spin" = "true"
  }
  os_disk_type   = "Managed"
  os_sku         = "Ubuntu"
  os_type        = "Linux"
  tags           = var.tags
  vm_size        = var.wasm_node_pool.vm_size
  vnet_subnet_id = var.subnet_id
  zones          = length(var.availability_zones) > 0 ? var.availability_zones : null

  upgrade_settings {
    max_surge = "1"
  }

  lifecycle {
    ignore_changes = [node_count]
  }
}
