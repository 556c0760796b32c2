# Log shipping: the EKS control plane, the VPC flow logs, the WAF and the containers (the
# amazon-cloudwatch-observability add-on ships every pod's stdout/stderr to the Container
# Insights groups below) land in CloudWatch Logs, encrypted with the platform key. The groups
# are created here, before the services would create them, to own retention and encryption.

resource "aws_cloudwatch_log_group" "cluster" {
  region            = var.region.location
  name              = "/aws/eks/${local.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.platform.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "flow" {
  region            = var.region.location
  name              = "/corridor/${var.environment}/${var.region.code}/vpc-flow"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.platform.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "containers" {
  for_each          = toset(["application", "dataplane", "host", "performance"])
  region            = var.region.location
  name              = "/aws/containerinsights/${local.name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.platform.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "waf" {
  region            = var.region.location
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.platform.arn
  tags              = local.tags
}

resource "aws_iam_role" "cloudwatch_agent" {
  name               = "${local.name}-cloudwatch-agent"
  assume_role_policy = data.aws_iam_policy_document.pod_trust.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch_agent" {
  role       = aws_iam_role.cloudwatch_agent.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_eks_addon" "observability" {
  region                      = var.region.location
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "amazon-cloudwatch-observability"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = local.tags

  pod_identity_association {
    role_arn        = aws_iam_role.cloudwatch_agent.arn
    service_account = "cloudwatch-agent"
  }

  depends_on = [aws_eks_addon.coredns, aws_cloudwatch_log_group.containers]
}
