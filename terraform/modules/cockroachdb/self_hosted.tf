# Self-hosted CockroachDB for sovereign clusters: ECS instances in the region's own VPC and
# location (cn-shanghai for cluster cn), so no byte of the cluster leaves it. Each node starts
# with --locality=region=<database_region, default the Corridor region code>,zone=<zone>, which
# is the name regions/ddl.py gives the database region. Node certificates are created once by an operator inside the
# location (`cockroach cert`, README) and kept in the region's KMS Secrets Manager; the nodes
# read them at boot through their RAM role, so no key material passes through Terraform.
# Node 0 initialises the cluster and applies local.cluster_settings_sql.

data "alicloud_images" "linux" {
  count       = length(local.sovereign_clusters) > 0 ? 1 : 0
  owners      = "system"
  name_regex  = "^aliyun_3_x64_20G_alibase_.*"
  most_recent = true
}

data "alicloud_account" "current" {}

locals {
  self_hosted_nodes = merge([
    for name, c in local.sovereign_clusters : {
      for i in range(var.self_hosted.node_count) : "${name}-${i}" => {
        cluster = name
        index   = i
        region  = coalesce(local.regions_by_cluster[name][0].database_region, local.regions_by_cluster[name][0].code)
        zone    = var.self_hosted_network[name].zone_ids[i % length(var.self_hosted_network[name].zone_ids)]
        vswitch = var.self_hosted_network[name].vswitch_ids[i % length(var.self_hosted_network[name].vswitch_ids)]
        # Fixed addresses so that every node knows the join list before any exists.
        ip = cidrhost(var.self_hosted_network[name].node_cidrs[i % length(var.self_hosted_network[name].node_cidrs)], 10 + floor(i / length(var.self_hosted_network[name].node_cidrs)))
      }
    }
  ]...)

  join_addresses = {
    for name, c in local.sovereign_clusters : name => [for k, n in local.self_hosted_nodes : "${n.ip}:26257" if n.cluster == name]
  }
}

resource "alicloud_security_group" "cockroach" {
  for_each            = local.sovereign_clusters
  security_group_name = "corridor-${var.environment}-${each.key}-cockroach"
  description         = "CockroachDB nodes of cluster ${each.key}: SQL/RPC and DB console from the region's VPC only"
  vpc_id              = var.self_hosted_network[each.key].vpc_id
  resource_group_id   = var.self_hosted_network[each.key].resource_group_id
  tags                = var.labels
}

resource "alicloud_security_group_rule" "cockroach" {
  for_each = merge([
    for name, c in local.sovereign_clusters : {
      "${name}-sql" = { cluster = name, port = "26257/26257", what = "SQL and inter-node RPC" }
      "${name}-ui"  = { cluster = name, port = "8080/8080", what = "DB console" }
    }
  ]...)
  security_group_id = alicloud_security_group.cockroach[each.value.cluster].id
  description       = "${each.value.what} from the region's VPC"
  type              = "ingress"
  ip_protocol       = "tcp"
  port_range        = each.value.port
  cidr_ip           = var.self_hosted_network[each.value.cluster].vpc_cidr
  policy            = "accept"
  priority          = 1
}

resource "alicloud_ram_role" "cockroach" {
  for_each    = local.sovereign_clusters
  role_name   = "corridor-${var.environment}-${each.key}-cockroach"
  description = "CockroachDB nodes of cluster ${each.key}: read their certificates"
  assume_role_policy_document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["ecs.aliyuncs.com"] }
    }]
  })
}

resource "alicloud_ram_policy" "cockroach" {
  for_each    = local.sovereign_clusters
  policy_name = "corridor-${var.environment}-${each.key}-cockroach"
  description = "Read cluster ${each.key}'s node certificates from KMS Secrets Manager"
  policy_document = jsonencode({
    Version = "1"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["kms:GetSecretValue"]
        Resource = ["acs:kms:${var.self_hosted_location}:${data.alicloud_account.current.id}:secret/${var.self_hosted.certs_secret_prefix}-${each.key}-*"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = ["acs:kms:${var.self_hosted_location}:${data.alicloud_account.current.id}:key/${var.self_hosted_network[each.key].kms_key_id}"]
      },
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "cockroach" {
  for_each    = local.sovereign_clusters
  role_name   = alicloud_ram_role.cockroach[each.key].role_name
  policy_name = alicloud_ram_policy.cockroach[each.key].policy_name
  policy_type = "Custom"
}

resource "alicloud_instance" "cockroach" {
  for_each                      = local.self_hosted_nodes
  instance_name                 = "corridor-${var.environment}-${each.key}"
  host_name                     = "cockroach-${each.key}"
  instance_type                 = var.self_hosted.instance_type
  image_id                      = data.alicloud_images.linux[0].images[0].id
  availability_zone             = each.value.zone
  vswitch_id                    = each.value.vswitch
  private_ip                    = each.value.ip
  security_groups               = [alicloud_security_group.cockroach[each.value.cluster].id]
  role_name                     = alicloud_ram_role.cockroach[each.value.cluster].role_name
  resource_group_id             = var.self_hosted_network[each.value.cluster].resource_group_id
  instance_charge_type          = "PostPaid"
  internet_max_bandwidth_out    = 0
  deletion_protection           = true
  security_enhancement_strategy = "Active"
  http_tokens                   = "required"
  system_disk_category          = "cloud_essd"
  system_disk_size              = 40
  system_disk_encrypted         = true
  system_disk_kms_key_id        = var.self_hosted_network[each.value.cluster].kms_key_id
  tags = merge(var.labels, {
    "corridor-environment" = var.environment
    "corridor-cluster"     = each.value.cluster
    "cockroach-locality"   = "region=${each.value.region},zone=${each.value.zone}"
  })

  data_disks {
    name                 = "cockroach-data"
    category             = "cloud_essd"
    performance_level    = "PL1"
    size                 = var.self_hosted.data_disk_gib
    encrypted            = true
    kms_key_id           = var.self_hosted_network[each.value.cluster].kms_key_id
    delete_with_instance = false
  }

  user_data = base64encode(templatefile("${path.module}/templates/cockroach-node.sh.tftpl", {
    binary_url      = var.self_hosted.binary_url
    binary_sha256   = var.self_hosted.binary_sha256
    location        = var.self_hosted_location
    ram_role        = alicloud_ram_role.cockroach[each.value.cluster].role_name
    secret_prefix   = "${var.self_hosted.certs_secret_prefix}-${each.value.cluster}"
    node_index      = each.value.index
    ip              = each.value.ip
    join            = join(",", local.join_addresses[each.value.cluster])
    locality        = "region=${each.value.region},zone=${each.value.zone}"
    initialise      = each.value.index == 0
    cluster_setting = join("; ", local.cluster_settings_sql)
  }))

  depends_on = [terraform_data.topology_checks, alicloud_ram_role_policy_attachment.cockroach]
}
