# ACK Pro: a managed control plane whose API server has no public address, Terway pod
# networking, Kubernetes secrets encrypted with the platform key, control-plane logs and
# every pod's stdout/stderr (logtail) shipped to the region's Simple Log Service project, and
# RRSA so that Corridor's service account assumes its own RAM role.

resource "alicloud_cs_managed_kubernetes" "this" {
  name                         = local.name
  cluster_spec                 = "ack.pro.small"
  version                      = var.kubernetes_version
  resource_group_id            = alicloud_resource_manager_resource_group.this.id
  vswitch_ids                  = alicloud_vswitch.nodes[*].id
  pod_vswitch_ids              = alicloud_vswitch.pods[*].id
  service_cidr                 = "172.21.0.0/20"
  new_nat_gateway              = false
  slb_internet_enabled         = false
  deletion_protection          = true
  enable_rrsa                  = true
  encryption_provider_key      = alicloud_kms_key.platform.id
  control_plane_log_project    = alicloud_log_project.this.project_name
  control_plane_log_ttl        = tostring(var.log_retention_days)
  control_plane_log_components = ["apiserver", "kcm", "scheduler", "ccm"]
  tags                         = local.tags

  addons {
    name = "terway-eniip"
  }

  addons {
    name = "csi-plugin"
  }

  addons {
    name = "csi-provisioner"
  }

  addons {
    name   = "logtail-ds"
    config = jsonencode({ IngressDashboardEnabled = "false", sls_project_name = alicloud_log_project.this.project_name })
  }
}

resource "alicloud_cs_kubernetes_node_pool" "app" {
  cluster_id            = alicloud_cs_managed_kubernetes.this.id
  node_pool_name        = "app"
  resource_group_id     = alicloud_resource_manager_resource_group.this.id
  vswitch_ids           = alicloud_vswitch.nodes[*].id
  instance_types        = var.node_instance_types
  security_group_ids    = [alicloud_security_group.nodes.id]
  image_type            = "AliyunLinux3"
  runtime_name          = "containerd"
  system_disk_category  = "cloud_essd"
  system_disk_size      = 80
  system_disk_encrypted = true
  system_disk_kms_key   = alicloud_kms_key.platform.id
  install_cloud_monitor = true
  tags                  = local.tags

  scaling_config {
    enable   = true
    min_size = var.node_count.min
    max_size = var.node_count.max
  }

  management {
    enable          = true
    auto_repair     = true
    auto_upgrade    = true
    max_unavailable = 1
  }
}

# Corridor's pods (service account corridor/corridor) assume this role through RRSA: read the
# region's secrets and use the KEK.
resource "alicloud_ram_role" "app" {
  role_name   = "${local.name}-app"
  description = "Corridor ${var.environment} ${var.region.code}: pods of the corridor service account"
  assume_role_policy_document = jsonencode({
    Version = "1"
    Statement = [{
      Action = "sts:AssumeRole"
      Effect = "Allow"
      Principal = {
        Federated = [alicloud_cs_managed_kubernetes.this.rrsa_metadata[0].ram_oidc_provider_arn]
      }
      Condition = {
        StringEquals = {
          "oidc:aud" = "sts.aliyuncs.com"
          "oidc:iss" = alicloud_cs_managed_kubernetes.this.rrsa_metadata[0].rrsa_oidc_issuer_url
          "oidc:sub" = "system:serviceaccount:corridor:corridor"
        }
      }
    }]
  })
}

resource "alicloud_ram_policy" "app" {
  policy_name = "${local.name}-app"
  description = "Corridor ${var.environment} ${var.region.code}: read the region's secrets, use its KEK"
  policy_document = jsonencode({
    Version = "1"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:DescribeKey"]
        Resource = ["acs:kms:${var.region.location}:${local.account_id}:key/${alicloud_kms_key.kek.id}"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:GetSecretValue"]
        Resource = [for s in alicloud_kms_secret.app : "acs:kms:${var.region.location}:${local.account_id}:secret/${s.secret_name}"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = ["acs:kms:${var.region.location}:${local.account_id}:key/${alicloud_kms_key.platform.id}"]
      },
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "app" {
  role_name   = alicloud_ram_role.app.role_name
  policy_name = alicloud_ram_policy.app.policy_name
  policy_type = "Custom"
}
