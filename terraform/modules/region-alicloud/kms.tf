# Two KMS keys per region. The KEK wraps Corridor's per-tenant data keys; KMS rotates it
# automatically and keeps every version, so keys wrapped before a rotation still unwrap.
# Corridor reads it with its alicloud-kms provider (regions/alicloud_keys.py). The platform
# key encrypts the region's secrets, node disks, Kubernetes secrets and logs.

data "alicloud_account" "current" {}

locals {
  protection_level = var.kms_instance_id == null ? "SOFTWARE" : "HSM"
  account_id       = data.alicloud_account.current.id
}

resource "alicloud_kms_key" "kek" {
  description            = "Corridor ${var.environment} ${var.region.code}: key-encryption key of the region's data keys"
  key_usage              = "ENCRYPT/DECRYPT"
  key_spec               = "Aliyun_AES_256"
  protection_level       = local.protection_level
  dkms_instance_id       = var.kms_instance_id
  automatic_rotation     = "Enabled"
  rotation_interval      = var.kek_rotation_interval
  pending_window_in_days = 30
  status                 = "Enabled"
  deletion_protection    = "Enabled"
  tags                   = merge(local.tags, { "corridor-purpose" = "kek" })
}

resource "alicloud_kms_alias" "kek" {
  alias_name = "alias/${local.name}-kek"
  key_id     = alicloud_kms_key.kek.id
}

resource "alicloud_kms_key" "platform" {
  description            = "Corridor ${var.environment} ${var.region.code}: secrets, disks, Kubernetes secrets, logs"
  key_usage              = "ENCRYPT/DECRYPT"
  key_spec               = "Aliyun_AES_256"
  protection_level       = local.protection_level
  dkms_instance_id       = var.kms_instance_id
  automatic_rotation     = "Enabled"
  rotation_interval      = "31536000s"
  pending_window_in_days = 30
  status                 = "Enabled"
  deletion_protection    = "Enabled"
  tags                   = merge(local.tags, { "corridor-purpose" = "platform" })
}

resource "alicloud_kms_alias" "platform" {
  alias_name = "alias/${local.name}-platform"
  key_id     = alicloud_kms_key.platform.id
}

# One secret per environment variable. Terraform writes a placeholder once and never reads
# the value back (ignore_changes): operators put the real values (README: "Secrets").
resource "alicloud_kms_secret" "app" {
  for_each                      = toset(var.secret_names)
  secret_name                   = "${local.name}-${each.value}"
  description                   = "Corridor ${var.environment} ${var.region.code}: value of ${each.value}"
  secret_data                   = "unset: put the value of ${each.value} here"
  version_id                    = "initial"
  encryption_key_id             = alicloud_kms_key.platform.id
  dkms_instance_id              = var.kms_instance_id
  force_delete_without_recovery = false
  recovery_window_in_days       = 30
  tags                          = merge(local.tags, { "corridor-env-var" = each.value })

  lifecycle {
    ignore_changes = [secret_data, version_id]
  }
}
