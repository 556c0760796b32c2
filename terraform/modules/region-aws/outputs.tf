output "region_code" {
  description = "The Corridor region this module deployed."
  value       = var.region.code
}

output "vpc_id" {
  description = "The region's VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets (EKS nodes, broker); PrivateLink endpoints to the database go here."
  value       = aws_subnet.private[*].id
}

output "kubernetes_cluster" {
  description = "The EKS cluster that runs the API, worker, relay and scheduler pods."
  value = {
    name     = aws_eks_cluster.this.name
    endpoint = aws_eks_cluster.this.endpoint
  }
}

output "kek_key_id" {
  description = "ARN of the region's key-encryption key (KMS)."
  value       = aws_kms_key.kek.arn
}

output "key_provider" {
  description = "Value of CORRIDOR_KEY_PROVIDER_<REGION> for this region (regions/kms.py)."
  value       = "aws-kms:${aws_kms_key.kek.arn}"
}

output "secret_refs" {
  description = "Environment variable name -> Secrets Manager ARN holding its value (no values)."
  value       = { for name, s in aws_secretsmanager_secret.app : name => s.arn }
}

output "amqp" {
  description = "The region's RabbitMQ: AMQPS endpoint without credentials, vhost, and the secret holding the full AMQP_URL."
  value = {
    endpoint   = aws_mq_broker.this.instances[0].endpoints[0]
    vhost      = var.region.amqp_vhost
    url_secret = aws_secretsmanager_secret.app["AMQP_URL"].arn
    admin      = aws_secretsmanager_secret.mq_admin.arn
  }
}

output "load_balancer" {
  description = "DNS name of the API's load balancer (point the region's API hostname here) and its TLS policy."
  value = {
    dns_name   = aws_lb.api.dns_name
    tls_policy = local.tls_policy
  }
}

output "workload_identity" {
  description = "Roles the region's pods assume through EKS Pod Identity (namespace/service account -> role ARN)."
  value = {
    "${var.app_namespace}/${var.app_service_account}"      = aws_iam_role.app.arn
    "${var.app_namespace}/${var.app_service_account}-keys" = aws_iam_role.key_operator.arn
  }
}
