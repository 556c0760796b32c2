# Pod Identity roles. `corridor` (API, worker, relay, scheduler) may read the region's secrets
# and use the KEK as regions/kms.py needs; `corridor-keys` (the pod an operator runs
# `corridor keys rotate` in) may also rotate the KEK. The CloudWatch agent ships logs.

data "aws_iam_policy_document" "pod_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "app" {
  name               = "${local.name}-app"
  assume_role_policy = data.aws_iam_policy_document.pod_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "app" {
  statement {
    sid       = "UseRegionKek"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:ListKeyRotations", "kms:DescribeKey"]
    resources = [aws_kms_key.kek.arn]
  }

  statement {
    sid       = "ReadRegionSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for s in aws_secretsmanager_secret.app : s.arn]
  }

  statement {
    sid       = "DecryptRegionSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.platform.arn]
  }
}

resource "aws_iam_role_policy" "app" {
  name   = "corridor-region"
  role   = aws_iam_role.app.id
  policy = data.aws_iam_policy_document.app.json
}

resource "aws_eks_pod_identity_association" "app" {
  region          = var.region.location
  cluster_name    = aws_eks_cluster.this.name
  namespace       = var.app_namespace
  service_account = var.app_service_account
  role_arn        = aws_iam_role.app.arn
  tags            = local.tags
}

resource "aws_iam_role" "key_operator" {
  name               = "${local.name}-keys"
  assume_role_policy = data.aws_iam_policy_document.pod_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "key_operator" {
  source_policy_documents = [data.aws_iam_policy_document.app.json]

  statement {
    sid       = "RotateRegionKek"
    actions   = ["kms:RotateKeyOnDemand", "kms:GetKeyRotationStatus"]
    resources = [aws_kms_key.kek.arn]
  }
}

resource "aws_iam_role_policy" "key_operator" {
  name   = "corridor-keys"
  role   = aws_iam_role.key_operator.id
  policy = data.aws_iam_policy_document.key_operator.json
}

resource "aws_eks_pod_identity_association" "key_operator" {
  region          = var.region.location
  cluster_name    = aws_eks_cluster.this.name
  namespace       = var.app_namespace
  service_account = "${var.app_service_account}-keys"
  role_arn        = aws_iam_role.key_operator.arn
  tags            = local.tags
}
