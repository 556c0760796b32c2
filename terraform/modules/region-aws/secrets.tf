# One Secrets Manager entry per environment variable the region's processes read: the
# database URLs named in regions.yaml (database_url_env), CORRIDOR_API_KEY_PEPPER and AMQP_URL.
# Terraform creates them empty: values never pass through Terraform or its state. Operators
# put them (README: "Secrets"); the pods read them through the app role.

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:Values are database URLs, the API key pepper and the AMQP URL. Rotating them is an application procedure (a new pepper invalidates every API key hash; a new database password needs the cluster's user changed first), not a Lambda rotation.
  for_each                = toset(var.secret_names)
  region                  = var.region.location
  name                    = "${local.secret_path}/${each.value}"
  description             = "Corridor ${var.environment} ${var.region.code}: value of ${each.value}"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = 30
  tags                    = merge(local.tags, { "corridor:env-var" = each.value })
}

# The broker's bootstrap administrator. Amazon MQ needs its password at creation, so it is
# generated here and sits in the Terraform state (keep the state encrypted; README). Rotate it
# through the RabbitMQ management API after the first apply: Amazon MQ does not report
# RabbitMQ users back, so Terraform sees no drift.
resource "random_password" "mq_admin" {
  length           = 32
  special          = true
  override_special = "!#%&*()-_+[]{}<>?"
}

resource "aws_secretsmanager_secret" "mq_admin" {
  #checkov:skip=CKV2_AWS_57:The broker's bootstrap admin password is rotated through the RabbitMQ management API (Amazon MQ has no rotation hook for RabbitMQ users).
  region                  = var.region.location
  name                    = "${local.secret_path}/rabbitmq-admin"
  description             = "Corridor ${var.environment} ${var.region.code}: Amazon MQ bootstrap administrator"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "mq_admin" {
  secret_id = aws_secretsmanager_secret.mq_admin.id
  region    = var.region.location
  secret_string = jsonencode({
    username = var.mq_admin_username
    password = random_password.mq_admin.result
  })
}
