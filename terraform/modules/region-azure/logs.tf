# Log shipping: Container Insights (every pod's stdout/stderr), the AKS control plane, the Key
# Vault audit trail and the Application Gateway's access and firewall logs all land in the
# region's Log Analytics workspace, which stays in the region's location.

resource "azurerm_log_analytics_workspace" "this" {
  name                = local.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

locals {
  diagnostics = {
    aks     = { id = azurerm_kubernetes_cluster.this.id, categories = ["kube-apiserver", "kube-audit-admin", "kube-controller-manager", "guard"] }
    vault   = { id = azurerm_key_vault.this.id, categories = ["AuditEvent"] }
    gateway = { id = azurerm_application_gateway.this.id, categories = ["ApplicationGatewayAccessLog", "ApplicationGatewayFirewallLog"] }
  }
}

resource "azurerm_monitor_diagnostic_setting" "this" {
  for_each                   = local.diagnostics
  name                       = "corridor-logs"
  target_resource_id         = each.value.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  dynamic "enabled_log" {
    for_each = toset(each.value.categories)
    content {
      category = enabled_log.value
    }
  }
}
