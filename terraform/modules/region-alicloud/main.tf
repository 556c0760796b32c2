# One Corridor region on Alibaba Cloud: a VPC with private vSwitches, ACK for the API,
# worker, relay and scheduler pods, ApsaraMQ for RabbitMQ (managed RabbitMQ, AMQP 0-9-1) with
# the region's vhost, the region's key-encryption key in KMS with automatic rotation, KMS
# secrets for the database URLs and the pepper, Simple Log Service for logs, and an ALB whose
# HTTPS listener accepts TLS 1.3 only.

data "alicloud_alb_zones" "available" {}

locals {
  name     = "corridor-${var.environment}-${var.region.code}"
  zone_ids = length(var.zone_ids) > 0 ? var.zone_ids : slice(sort(data.alicloud_alb_zones.available.zones[*].id), 0, 3)

  # Per zone: nodes /20, pods (Terway) /19, load balancer /24.
  node_cidrs = [for i, _ in local.zone_ids : cidrsubnet(var.vpc_cidr, 4, i)]
  pod_cidrs  = [for i, _ in local.zone_ids : cidrsubnet(var.vpc_cidr, 3, 4 + i)]
  alb_cidrs  = [for i, _ in local.zone_ids : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  tags = merge(var.tags, {
    "corridor-environment"   = var.environment
    "corridor-region"        = var.region.code
    "corridor-jurisdictions" = join(",", var.region.jurisdictions)
    "corridor-cluster"       = var.region.cluster
  })
}

resource "alicloud_resource_manager_resource_group" "this" {
  resource_group_name = local.name
  display_name        = local.name
}
