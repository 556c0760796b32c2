# The region's Key Vault: Premium (HSM-backed keys), RBAC authorisation, purge protection.
# The KEK wraps Corridor's per-tenant data keys; Key Vault rotates it by its rotation policy
# and keeps every version, so keys wrapped before a rotation still unwrap. Corridor reads it
# with its azure-keyvault provider (regions/azure_keys.py): RSA-OAEP-256 wrap and unwrap.

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_189:The data plane stays reachable only from var.operator_cidrs (Terraform and operators write keys and secrets) and trusted Azure services (the Application Gateway reads its certificate); network_acls deny everything else and pods use the private endpoint.
  name                          = local.vault_name
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  tenant_id                     = local.tenant_id
  sku_name                      = "premium"
  enable_rbac_authorization     = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = local.tags

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.operator_cidrs
  }
}

resource "azurerm_private_dns_zone" "vault" {
  name                = "privatelink.vaultcore.azure.net"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "vault" {
  name                  = "${local.name}-vault"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.vault.name
  virtual_network_id    = azurerm_virtual_network.this.id
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "vault" {
  name                = "${local.name}-vault"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "vault"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.vault.id]
  }
}

# Terraform's own identity administers the vault's keys, secrets and certificates.
resource "azurerm_role_assignment" "deployer" {
  for_each             = toset(["Key Vault Crypto Officer", "Key Vault Secrets Officer", "Key Vault Certificates Officer"])
  scope                = azurerm_key_vault.this.id
  role_definition_name = each.value
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_key" "kek" {
  #checkov:skip=CKV_AZURE_40:The rotation policy below sets expire_after on every version; a fixed expiration_date on the resource would fight the rotation.
  name         = "corridor-kek"
  key_vault_id = azurerm_key_vault.this.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["wrapKey", "unwrapKey"]
  tags         = merge(local.tags, { "corridor-purpose" = "kek" })

  rotation_policy {
    expire_after         = "P1095D"
    notify_before_expiry = "P30D"

    automatic {
      time_after_creation = var.kek_rotation_period
    }
  }

  depends_on = [azurerm_role_assignment.deployer]
}

# Encrypts the AKS nodes' disks (disk encryption set).
resource "azurerm_key_vault_key" "disks" {
  #checkov:skip=CKV_AZURE_40:The rotation policy below sets expire_after on every version; a fixed expiration_date on the resource would fight the rotation.
  name         = "corridor-disks"
  key_vault_id = azurerm_key_vault.this.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["wrapKey", "unwrapKey"]
  tags         = merge(local.tags, { "corridor-purpose" = "disks" })

  rotation_policy {
    expire_after         = "P1095D"
    notify_before_expiry = "P30D"

    automatic {
      time_after_creation = "P365D"
    }
  }

  depends_on = [azurerm_role_assignment.deployer]
}

resource "azurerm_disk_encryption_set" "this" {
  name                      = local.name
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  key_vault_key_id          = azurerm_key_vault_key.disks.versionless_id
  auto_key_rotation_enabled = true
  tags                      = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "disk_encryption_set" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_disk_encryption_set.this.identity[0].principal_id
}

# One secret per environment variable. Terraform writes a placeholder once and never reads
# the value back (ignore_changes): operators put the real values (README: "Secrets").
resource "azurerm_key_vault_secret" "app" {
  #checkov:skip=CKV_AZURE_41:An expiring database URL or pepper would stop the region; these values change through the application's rotation procedures instead.
  for_each     = toset(var.secret_names)
  name         = replace(each.value, "_", "-")
  key_vault_id = azurerm_key_vault.this.id
  value        = "unset: put the value of ${each.value} here"
  content_type = "text/plain; env=${each.value}"
  tags         = merge(local.tags, { "corridor-env-var" = each.value })

  lifecycle {
    ignore_changes = [value, tags]
  }

  depends_on = [azurerm_role_assignment.deployer]
}

resource "azurerm_key_vault_certificate" "api" {
  name         = "corridor-api"
  key_vault_id = azurerm_key_vault.this.id
  tags         = local.tags

  certificate_policy {
    issuer_parameters {
      name = var.certificate_issuer
    }

    key_properties {
      exportable = true
      key_type   = "RSA"
      key_size   = 2048
      reuse_key  = false
    }

    lifetime_action {
      action {
        action_type = "AutoRenew"
      }
      trigger {
        days_before_expiry = 30
      }
    }

    secret_properties {
      content_type = "application/x-pkcs12"
    }

    x509_certificate_properties {
      subject            = "CN=${var.api_hostname}"
      validity_in_months = 12
      key_usage          = ["digitalSignature"]
      extended_key_usage = ["1.3.6.1.5.5.7.3.1"]

      subject_alternative_names {
        dns_names = [var.api_hostname]
      }
    }
  }

  depends_on = [azurerm_role_assignment.deployer]
}
