# The clusters of regions.yaml. Sovereign clusters are self-hosted in their region's VPC in
# cn-shanghai (the alicloud provider passed to the module); the others are CockroachDB Cloud.

module "cockroachdb" {
  source    = "../cockroachdb"
  providers = { cockroach = cockroach, alicloud = alicloud.cn_shanghai }

  environment               = var.environment
  clusters                  = var.topology.clusters
  regions                   = var.topology.regions
  cloud                     = var.cockroach_cloud
  self_hosted               = var.cockroach_self_hosted
  self_hosted_location      = "cn-shanghai"
  labels                    = local.tags

  self_hosted_network = {
    for name, c in local.clusters : name => merge(module.region_alicloud_cn_shanghai[c.primary_region].network, {
      kms_key_id        = module.region_alicloud_cn_shanghai[c.primary_region].platform_key_id
      resource_group_id = module.region_alicloud_cn_shanghai[c.primary_region].resource_group_id
    }) if contains(keys(module.region_alicloud_cn_shanghai), c.primary_region)
  }
}
