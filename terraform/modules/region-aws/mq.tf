# Amazon MQ for RabbitMQ, private to the VPC. The region's vhost (regions.yaml amqp_vhost) and
# Corridor's user are created through the management API after the first apply (Amazon MQ
# has no API for RabbitMQ vhosts); AMQP_URL in Secrets Manager then names both.

resource "aws_security_group" "mq" {
  region      = var.region.location
  name        = "${local.name}-mq"
  description = "Amazon MQ: AMQPS and the management API from the region's private subnets"
  vpc_id      = aws_vpc.this.id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "mq" {
  for_each          = { amqps = 5671, management = 443 }
  region            = var.region.location
  security_group_id = aws_security_group.mq.id
  description       = "RabbitMQ ${each.key} from the private subnets"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}

resource "aws_mq_broker" "this" {
  region                     = var.region.location
  broker_name                = local.name
  engine_type                = "RabbitMQ"
  engine_version             = var.mq_engine_version
  host_instance_type         = var.mq_instance_type
  deployment_mode            = var.mq_deployment_mode
  subnet_ids                 = var.mq_deployment_mode == "SINGLE_INSTANCE" ? [aws_subnet.private[0].id] : aws_subnet.private[*].id
  security_groups            = [aws_security_group.mq.id]
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  authentication_strategy    = "simple"
  tags                       = local.tags

  encryption_options {
    use_aws_owned_key = false
    kms_key_id        = aws_kms_key.platform.arn
  }

  logs {
    general = true
  }

  maintenance_window_start_time {
    day_of_week = "SUNDAY"
    time_of_day = "03:00"
    time_zone   = "UTC"
  }

  user {
    username = var.mq_admin_username
    password = random_password.mq_admin.result
  }
}
