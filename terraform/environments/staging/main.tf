# Corridor's staging environment. The topology (regions, clouds, locations, clusters, vhosts)
# comes only from regions.yaml at the repository root; this file sets staging's sizes.

locals {
  topology = yamldecode(file("${path.module}/../../../regions.yaml"))
}

module "corridor" {
  source = "../../modules/environment"

  providers = {
    aws                     = aws
    azurerm                 = azurerm
    cockroach               = cockroach
    alicloud.ap_southeast_1 = alicloud.ap_southeast_1
    alicloud.cn_shanghai    = alicloud.cn_shanghai
  }

  environment       = "staging"
  topology          = local.topology
  api_domain        = var.api_domain
  tls_certificates  = var.tls_certificates
  operator_cidrs    = var.operator_cidrs
  gitops_repository = var.gitops_repository

  aws = {
    node_count          = { desired = 2, min = 2, max = 4 }
    node_instance_types = ["m7i.large"]
    mq_instance_type    = "mq.m5.large"
    mq_deployment_mode  = "SINGLE_INSTANCE"
  }

  azure = {
    app_node_count = { min = 2, max = 4 }
    app_vm_size    = "Standard_D4ds_v5"
  }

  alicloud = {
    node_count          = { min = 2, max = 4 }
    node_instance_types = ["ecs.g7.xlarge"]
    amqp_instance       = { instance_type = "professional", max_tps = 1000, queue_capacity = 50 }
  }

  cockroach_cloud = {
    provider          = "AWS"
    cockroach_version = "v25.2"
    num_virtual_cpus  = 4
    storage_gib       = 50
    nodes_per_region  = 3
  }

  cockroach_self_hosted = {
    instance_type       = "ecs.g7.xlarge"
    node_count          = 3
    data_disk_gib       = 100
    binary_url          = var.cockroach_binary.url
    binary_sha256       = var.cockroach_binary.sha256
    certs_secret_prefix = "corridor-staging-cockroach"
  }

  tags = { "corridor-stage" = "staging" }
}
