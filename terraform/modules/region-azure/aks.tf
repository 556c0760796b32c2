# AKS: private API server, Entra ID RBAC only (no local accounts), workload identity, node
# disks encrypted with the region's key, Cilium network policy, Defender and Container
# Insights shipping logs to the workspace.

resource "azurerm_user_assigned_identity" "cluster" {
  name                = "${local.name}-aks"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "cluster_network" {
  scope                = azurerm_virtual_network.this.id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.cluster.principal_id
}

resource "azurerm_role_assignment" "cluster_disks" {
  scope                = azurerm_disk_encryption_set.this.id
  role_definition_name = "Reader"
  principal_id         = azurerm_user_assigned_identity.cluster.principal_id
}

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_171:checkov 3.1.47 reads the azurerm 3 name automatic_channel_upgrade; azurerm 4 calls it automatic_upgrade_channel, set to patch below.
  #checkov:skip=CKV_AZURE_227:checkov 3.1.47 reads the azurerm 3 name enable_host_encryption; azurerm 4 calls it host_encryption_enabled, set to true on every pool below.
  name                              = local.name
  location                          = azurerm_resource_group.this.location
  resource_group_name               = azurerm_resource_group.this.name
  dns_prefix                        = local.name
  kubernetes_version                = var.kubernetes_version
  sku_tier                          = "Standard"
  private_cluster_enabled           = true
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true
  oidc_issuer_enabled               = true
  workload_identity_enabled         = true
  automatic_upgrade_channel         = "patch"
  node_os_upgrade_channel           = "NodeImage"
  disk_encryption_set_id            = azurerm_disk_encryption_set.this.id
  tags                              = local.tags

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_vm_size
    vnet_subnet_id               = azurerm_subnet.nodes.id
    zones                        = ["1", "2", "3"]
    auto_scaling_enabled         = true
    min_count                    = 3
    max_count                    = 5
    max_pods                     = 50
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 100
    host_encryption_enabled      = true
    node_public_ip_enabled       = false
    only_critical_addons_enabled = true
    temporary_name_for_rotation  = "systemtmp"
    tags                         = local.tags

    upgrade_settings {
      max_surge = "33%"
    }
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cluster.id]
  }

  azure_active_directory_role_based_access_control {
    tenant_id          = local.tenant_id
    azure_rbac_enabled = true
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  microsoft_defender {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  }

  key_vault_secrets_provider {
    secret_rotation_enabled  = true
    secret_rotation_interval = "2m"
  }

  depends_on = [azurerm_role_assignment.cluster_network, azurerm_role_assignment.cluster_disks, azurerm_role_assignment.disk_encryption_set]
}

resource "azurerm_kubernetes_cluster_node_pool" "app" {
  #checkov:skip=CKV_AZURE_227:checkov 3.1.47 reads the azurerm 3 name enable_host_encryption; azurerm 4 calls it host_encryption_enabled, set to true below.
  name                    = "app"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  mode                    = "User"
  vm_size                 = var.app_vm_size
  vnet_subnet_id          = azurerm_subnet.nodes.id
  zones                   = ["1", "2", "3"]
  auto_scaling_enabled    = true
  min_count               = var.app_node_count.min
  max_count               = var.app_node_count.max
  max_pods                = 50
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 100
  host_encryption_enabled = true
  node_public_ip_enabled  = false
  tags                    = local.tags

  upgrade_settings {
    max_surge = "33%"
  }
}

# Corridor's pods (service account var.app_namespace/var.app_service_account) get this
# identity through workload identity: secrets read, KEK wrap/unwrap.
resource "azurerm_user_assigned_identity" "app" {
  name                = "${local.name}-app"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "app" {
  name                = "${var.app_namespace}-${var.app_service_account}"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.app.id
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${var.app_namespace}:${var.app_service_account}"
  audience            = ["api://AzureADTokenExchange"]
}

resource "azurerm_role_assignment" "app_kek" {
  scope                = "${azurerm_key_vault.this.id}/keys/${azurerm_key_vault_key.kek.name}"
  role_definition_name = "Key Vault Crypto User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

resource "azurerm_role_assignment" "app_secrets" {
  for_each             = azurerm_key_vault_secret.app
  scope                = "${azurerm_key_vault.this.id}/secrets/${each.value.name}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}
