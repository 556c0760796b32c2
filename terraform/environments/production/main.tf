# Corridor's production environment. The topology (regions, clouds, locations, clusters, vhosts)
# comes only from regions.yaml at the repository root; this file sets production's sizes.

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

  environment       = "production"
  topology          = local.topology
  api_domain        = var.api_domain
  tls_certificates  = var.tls_certificates
  operator_cidrs    = var.operator_cidrs
  gitops_repository = var.gitops_repository

  aws = {
    node_count          = { desired = 3, min = 3, max = 12 }
    node_instance_types = ["m7i.xlarge"]
    mq_instance_type    = "mq.m5.large"
    mq_deployment_mode  = "CLUSTER_MULTI_AZ"
  }

  azure = {
    app_node_count = { min = 3, max = 12 }
    app_vm_size    = "Standard_D4ds_v5"
  }

  alicloud = {
    node_count          = { min = 3, max = 12 }
    node_instance_types = ["ecs.g7.2xlarge"]
    amqp_instance       = { instance_type = "enterprise", max_tps = 3000, queue_capacity = 200 }
  }

  cockroach_cloud = {
    provider          = "AWS"
    cockroach_version = "v25.2"
    num_virtual_cpus  = 8
    storage_gib       = 300
    nodes_per_region  = 3
  }

  cockroach_self_hosted = {
    instance_type       = "ecs.g7.2xlarge"
    node_count          = 3
    data_disk_gib       = 500
    binary_url          = var.cockroach_binary.url
    binary_sha256       = var.cockroach_binary.sha256
    certs_secret_prefix = "corridor-production-cockroach"
  }

  tags = { "corridor-stage" = "production" }
}
