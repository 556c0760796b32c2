# Log shipping: the ACK control plane, every pod's stdout/stderr (logtail-ds) and the ALB's
# access log go to the region's Simple Log Service project, which stays in the region.

resource "alicloud_log_project" "this" {
  project_name      = local.name
  description       = "Corridor ${var.environment} ${var.region.code}: control plane, containers, load balancer"
  resource_group_id = alicloud_resource_manager_resource_group.this.id
  tags              = local.tags
}

resource "alicloud_log_store" "this" {
  for_each              = toset(["containers", "alb-access"])
  project_name          = alicloud_log_project.this.project_name
  logstore_name         = each.value
  retention_period      = var.log_retention_days
  shard_count           = 2
  auto_split            = true
  max_split_shard_count = 16

  encrypt_conf {
    enable       = true
    encrypt_type = "default"
  }
}
