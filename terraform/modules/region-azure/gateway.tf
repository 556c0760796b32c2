# The public entrance: Application Gateway WAF_v2 over zones 1-3 with an HTTPS listener only,
# TLS 1.3 only (CustomV2 policy with min_protocol_version TLSv1_3), the certificate from the
# region's Key Vault, and the OWASP rule set in prevention mode. It forwards to the API's
# internal load balancer (local.api_backend_ip).

resource "azurerm_public_ip" "gateway" {
  name                = "${local.name}-gateway"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = ["1", "2", "3"]
  tags                = local.tags
}

resource "azurerm_user_assigned_identity" "gateway" {
  name                = "${local.name}-gateway"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "gateway_certificate" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.gateway.principal_id
}

resource "azurerm_web_application_firewall_policy" "this" {
  name                = "${replace(local.name, "-", "")}waf"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags

  policy_settings {
    enabled                     = true
    mode                        = "Prevention"
    request_body_check          = true
    max_request_body_size_in_kb = 128
  }

  managed_rules {
    managed_rule_set {
      type    = "OWASP"
      version = "3.2"
    }
  }
}

locals {
  gateway = {
    frontend_ip   = "public"
    frontend_port = "https"
    listener      = "api-https"
    backend_pool  = "api"
    backend_http  = "api"
    certificate   = "api"
  }
}

resource "azurerm_application_gateway" "this" {
  name                = local.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  zones               = ["1", "2", "3"]
  firewall_policy_id  = azurerm_web_application_firewall_policy.this.id
  tags                = local.tags

  sku {
    name = "WAF_v2"
    tier = "WAF_v2"
  }

  autoscale_configuration {
    min_capacity = 2
    max_capacity = 10
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.gateway.id]
  }

  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = azurerm_subnet.gateway.id
  }

  frontend_ip_configuration {
    name                 = local.gateway.frontend_ip
    public_ip_address_id = azurerm_public_ip.gateway.id
  }

  frontend_port {
    name = local.gateway.frontend_port
    port = 443
  }

  ssl_policy {
    policy_type          = "CustomV2"
    min_protocol_version = "TLSv1_3"
  }

  ssl_certificate {
    name                = local.gateway.certificate
    key_vault_secret_id = azurerm_key_vault_certificate.api.versionless_secret_id
  }

  http_listener {
    name                           = local.gateway.listener
    frontend_ip_configuration_name = local.gateway.frontend_ip
    frontend_port_name             = local.gateway.frontend_port
    protocol                       = "Https"
    ssl_certificate_name           = local.gateway.certificate
    host_name                      = var.api_hostname
  }

  backend_address_pool {
    name         = local.gateway.backend_pool
    ip_addresses = [local.api_backend_ip]
  }

  probe {
    name                = "api-ready"
    protocol            = "Http"
    host                = var.api_hostname
    path                = "/health/ready"
    interval            = 10
    timeout             = 5
    unhealthy_threshold = 3
  }

  backend_http_settings {
    name                  = local.gateway.backend_http
    protocol              = "Http"
    port                  = local.api_port
    cookie_based_affinity = "Disabled"
    request_timeout       = 30
    probe_name            = "api-ready"
    host_name             = var.api_hostname
  }

  request_routing_rule {
    name                       = "api"
    rule_type                  = "Basic"
    priority                   = 100
    http_listener_name         = local.gateway.listener
    backend_address_pool_name  = local.gateway.backend_pool
    backend_http_settings_name = local.gateway.backend_http
  }

  depends_on = [azurerm_role_assignment.gateway_certificate]
}
