# The public entrance: an ALB (with WAF) whose HTTPS listener accepts TLS 1.3 only
# (alicloud_alb_security_policy.tls13). No HTTP listener: an API key sent once in clear text
# is leaked, redirect or not. The API pods join the server group through the ALB Ingress
# controller's AlbConfig reusing this ALB (release pipeline).

locals {
  api_port = 8000
}

resource "alicloud_alb_security_policy" "tls13" {
  security_policy_name = "${local.name}-tls13"
  resource_group_id    = alicloud_resource_manager_resource_group.this.id
  tls_versions         = ["TLSv1.3"]
  ciphers              = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
  tags                 = local.tags
}

resource "alicloud_alb_load_balancer" "api" {
  load_balancer_name          = local.name
  load_balancer_edition       = "StandardWithWaf"
  address_type                = "Internet"
  address_allocated_mode      = "Fixed"
  vpc_id                      = alicloud_vpc.this.id
  resource_group_id           = alicloud_resource_manager_resource_group.this.id
  deletion_protection_enabled = true
  tags                        = local.tags

  load_balancer_billing_config {
    pay_type = "PayAsYouGo"
  }

  access_log_config {
    log_project = alicloud_log_project.this.project_name
    log_store   = alicloud_log_store.this["alb-access"].logstore_name
  }

  dynamic "zone_mappings" {
    for_each = alicloud_vswitch.alb
    content {
      vswitch_id = zone_mappings.value.id
      zone_id    = zone_mappings.value.zone_id
    }
  }
}

resource "alicloud_alb_server_group" "api" {
  server_group_name = "${local.name}-api"
  server_group_type = "Ip"
  protocol          = "HTTP"
  vpc_id            = alicloud_vpc.this.id
  resource_group_id = alicloud_resource_manager_resource_group.this.id
  tags              = local.tags

  health_check_config {
    health_check_enabled  = true
    health_check_protocol = "HTTP"
    health_check_path     = "/health/ready"
    health_check_codes    = ["http_2xx"]
    health_check_interval = 5
    health_check_timeout  = 3
    healthy_threshold     = 3
    unhealthy_threshold   = 3
  }

  sticky_session_config {
    sticky_session_enabled = false
  }
}

resource "alicloud_alb_listener" "https" {
  count                = var.certificate_id == "" ? 0 : 1
  load_balancer_id     = alicloud_alb_load_balancer.api.id
  listener_protocol    = "HTTPS"
  listener_port        = 443
  listener_description = "${local.name}-https"
  security_policy_id   = alicloud_alb_security_policy.tls13.id
  http2_enabled        = true
  tags                 = local.tags

  certificates {
    certificate_id = var.certificate_id
  }

  default_actions {
    type = "ForwardGroup"
    forward_group_config {
      server_group_tuples {
        server_group_id = alicloud_alb_server_group.api.id
      }
    }
  }
}
