output "region_code" {
  description = "The Corridor region this module deployed."
  value       = var.region.code
}

output "network" {
  description = "The region's VPC, its node vSwitches and their zones (the sovereign CockroachDB nodes go here)."
  value = {
    vpc_id      = alicloud_vpc.this.id
    vpc_cidr    = var.vpc_cidr
    vswitch_ids = alicloud_vswitch.nodes[*].id
    zone_ids    = alicloud_vswitch.nodes[*].zone_id
    node_cidrs  = local.node_cidrs
  }
}

output "resource_group_id" {
  description = "The region's resource group."
  value       = alicloud_resource_manager_resource_group.this.id
}

output "kubernetes_cluster" {
  description = "The ACK cluster that runs the API, worker, relay and scheduler pods."
  value = {
    id   = alicloud_cs_managed_kubernetes.this.id
    name = alicloud_cs_managed_kubernetes.this.name
  }
}

output "kek_key_id" {
  description = "Id of the region's key-encryption key in Alibaba KMS (Aliyun_AES_256, automatic rotation)."
  value       = alicloud_kms_key.kek.id
}

output "platform_key_id" {
  description = "Id of the region's platform key (disks, secrets, logs)."
  value       = alicloud_kms_key.platform.id
}

output "key_provider" {
  description = "Value of CORRIDOR_KEY_PROVIDER_<REGION> for this region (regions/alicloud_keys.py)."
  value       = "alicloud-kms:${var.region.location}/${alicloud_kms_key.kek.id}"
}

output "secret_refs" {
  description = "Environment variable name -> KMS secret name holding its value (no values)."
  value       = { for name, s in alicloud_kms_secret.app : name => "acs:kms:${var.region.location}:${local.account_id}:secret/${s.secret_name}" }
}

output "amqp" {
  description = "The region's ApsaraMQ for RabbitMQ: instance, vhost, and the secret holding the full AMQP_URL (its endpoint is shown in the instance's console)."
  value = {
    instance_id = alicloud_amqp_instance.this.id
    vhost       = alicloud_amqp_virtual_host.this.virtual_host_name
    url_secret  = "acs:kms:${var.region.location}:${local.account_id}:secret/${alicloud_kms_secret.app["AMQP_URL"].secret_name}"
  }
}

output "load_balancer" {
  description = "DNS name of the region's ALB (point the API hostname here) and its TLS policy."
  value = {
    dns_name   = alicloud_alb_load_balancer.api.dns_name
    tls_policy = alicloud_alb_security_policy.tls13.id
  }
}

output "workload_identity" {
  description = "RAM role the pods' service account assumes through RRSA (namespace/service account -> role ARN)."
  value = {
    "corridor/corridor" = alicloud_ram_role.app.arn
  }
}
