module "region_aws" {
  source   = "../region-aws"
  for_each = local.regions_on["aws"]

  environment                = var.environment
  region                     = each.value
  secret_names               = local.secret_names
  certificate_arn            = lookup(var.tls_certificates, each.key, "")
  api_endpoint_allowed_cidrs = var.operator_cidrs
  node_count                 = var.aws.node_count
  node_instance_types        = var.aws.node_instance_types
  mq_instance_type           = var.aws.mq_instance_type
  mq_deployment_mode         = var.aws.mq_deployment_mode
  tags                       = local.tags
}

module "region_azure" {
  source   = "../region-azure"
  for_each = local.regions_on["azure"]

  environment       = var.environment
  region            = each.value
  secret_names      = local.secret_names
  api_hostname      = local.api_hostname[each.key]
  operator_cidrs    = var.operator_cidrs
  gitops_repository = var.gitops_repository
  app_node_count    = var.azure.app_node_count
  app_vm_size       = var.azure.app_vm_size
  tags              = local.tags
}

# One module block per Alibaba Cloud location (the provider is bound to one); each takes the
# regions of regions.yaml in that location.
module "region_alicloud_ap_southeast_1" {
  source    = "../region-alicloud"
  for_each  = local.alibaba_regions_in["ap-southeast-1"]
  providers = { alicloud = alicloud.ap_southeast_1 }

  environment         = var.environment
  region              = each.value
  secret_names        = local.secret_names
  certificate_id      = lookup(var.tls_certificates, each.key, "")
  node_count          = var.alicloud.node_count
  node_instance_types = var.alicloud.node_instance_types
  amqp_instance       = var.alicloud.amqp_instance
  tags                = local.tags
}

module "region_alicloud_cn_shanghai" {
  source    = "../region-alicloud"
  for_each  = local.alibaba_regions_in["cn-shanghai"]
  providers = { alicloud = alicloud.cn_shanghai }

  environment         = var.environment
  region              = each.value
  secret_names        = local.secret_names
  certificate_id      = lookup(var.tls_certificates, each.key, "")
  node_count          = var.alicloud.node_count
  node_instance_types = var.alicloud.node_instance_types
  amqp_instance       = var.alicloud.amqp_instance
  tags                = local.tags
}

locals {
  region_modules = merge(
    module.region_aws,
    module.region_azure,
    module.region_alicloud_ap_southeast_1,
    module.region_alicloud_cn_shanghai,
  )
}
