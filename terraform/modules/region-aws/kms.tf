# Two customer-managed keys per region. The KEK wraps Corridor's per-tenant data keys
# (regions/kms.py: `aws-kms:<key ARN>`); nothing else uses it, so its key policy and the
# CloudTrail trail of its use say exactly who unwrapped what. The platform key encrypts the
# region's logs, Kubernetes secrets, Secrets Manager entries and the broker's storage.

data "aws_iam_policy_document" "kek" {
  #checkov:skip=CKV_AWS_109:A key policy: "*" as resource means this key only, and the account-root statement delegates to IAM policies, as AWS's default key policy does.
  #checkov:skip=CKV_AWS_111:A key policy: "*" as resource means this key only; write access is delegated to IAM policies scoped to the key's ARN.
  #checkov:skip=CKV_AWS_356:A key policy: "*" as resource means this key only.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "kek" {
  region                  = var.region.location
  description             = "Corridor ${var.environment} ${var.region.code}: key-encryption key of the region's data keys"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = var.kek_rotation_period_days
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kek.json
  tags                    = merge(local.tags, { "corridor:purpose" = "kek" })
}

resource "aws_kms_alias" "kek" {
  region        = var.region.location
  name          = "alias/${local.name}-kek"
  target_key_id = aws_kms_key.kek.key_id
}

data "aws_iam_policy_document" "platform" {
  #checkov:skip=CKV_AWS_109:A key policy: "*" as resource means this key only, and the account-root statement delegates to IAM policies, as AWS's default key policy does.
  #checkov:skip=CKV_AWS_111:A key policy: "*" as resource means this key only; write access is delegated to IAM policies scoped to the key's ARN.
  #checkov:skip=CKV_AWS_356:A key policy: "*" as resource means this key only.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region.location}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region.location}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "platform" {
  region                  = var.region.location
  description             = "Corridor ${var.environment} ${var.region.code}: logs, Kubernetes secrets, Secrets Manager, broker storage"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.platform.json
  tags                    = merge(local.tags, { "corridor:purpose" = "platform" })
}

resource "aws_kms_alias" "platform" {
  region        = var.region.location
  name          = "alias/${local.name}-platform"
  target_key_id = aws_kms_key.platform.key_id
}
