# One Corridor region on Azure: a VNet with private subnets, AKS for the API, worker, relay
# and scheduler pods, RabbitMQ on AKS (the RabbitMQ cluster operator, reconciled by Flux from
# manifests/rabbitmq: Azure has no managed RabbitMQ), the region's key-encryption key in an
# HSM-backed Key Vault with a rotation policy, Key Vault secrets for the database URLs and the
# pepper, Log Analytics for logs, and an Application Gateway (WAF_v2) that accepts TLS 1.3 only.

data "azurerm_client_config" "current" {}

locals {
  name = "corridor-${var.environment}-${var.region.code}"
  # Key Vault names: 3-24 characters, globally unique.
  vault_name = substr("cor${substr(var.environment, 0, 4)}${replace(var.region.code, "-", "")}${substr(sha1(data.azurerm_client_config.current.subscription_id), 0, 4)}", 0, 24)
  tenant_id  = data.azurerm_client_config.current.tenant_id

  subnets = {
    nodes             = cidrsubnet(var.vnet_cidr, 4, 0)
    gateway           = cidrsubnet(var.vnet_cidr, 8, 16)
    private_endpoints = cidrsubnet(var.vnet_cidr, 8, 17)
  }
  # The API's internal load balancer (a Kubernetes Service annotated with this address);
  # the Application Gateway forwards to it.
  api_backend_ip = cidrhost(local.subnets.nodes, 4000)
  api_port       = 8000

  tags = merge(var.tags, {
    "corridor-environment"   = var.environment
    "corridor-region"        = var.region.code
    "corridor-jurisdictions" = join(",", var.region.jurisdictions)
    "corridor-cluster"       = var.region.cluster
  })
}

resource "azurerm_resource_group" "this" {
  name     = local.name
  location = var.region.location
  tags     = local.tags
}
