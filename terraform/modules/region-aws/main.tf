# One Corridor region on AWS: a VPC with private subnets, EKS for the API, worker, relay and
# scheduler pods, Amazon MQ for RabbitMQ, the region's key-encryption key in KMS, Secrets
# Manager entries for the database URLs and the pepper, CloudWatch log shipping, and an ALB
# that terminates TLS 1.3 only. Every regional resource names its AWS region (`region`), so
# the module needs no provider configuration of its own.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  region = var.region.location
  state  = "available"
}

locals {
  name        = "corridor-${var.environment}-${var.region.code}"
  short_name  = "corridor-${substr(var.environment, 0, 4)}-${var.region.code}"
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  zones       = slice(data.aws_availability_zones.available.names, 0, var.availability_zone_count)
  secret_path = "corridor/${var.environment}/${var.region.code}"

  tags = merge(var.tags, {
    "corridor:environment"   = var.environment
    "corridor:region"        = var.region.code
    "corridor:jurisdictions" = join(" ", var.region.jurisdictions)
    "corridor:cluster"       = var.region.cluster
  })
}
