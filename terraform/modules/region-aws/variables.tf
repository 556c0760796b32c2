variable "environment" {
  description = "Environment name (staging, production); part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2 to 16 lowercase letters, digits or dashes."
  }
}

variable "region" {
  description = "The Corridor region as regions.yaml describes it (code, jurisdictions, cloud, location, cluster, sovereign, amqp_vhost, status)."
  type = object({
    code          = string
    jurisdictions = list(string)
    cloud         = string
    location      = string
    cluster       = string
    sovereign     = bool
    amqp_vhost    = string
    status        = string
  })

  validation {
    condition     = var.region.cloud == "aws"
    error_message = "region-aws deploys only regions whose cloud is aws."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the region's VPC; a /16 gives three private and three public /20 subnets."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zone_count" {
  description = "Availability zones the region spreads over (subnets, NAT gateways, nodes, brokers)."
  type        = number
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 3
    error_message = "availability_zone_count must be 2 or 3."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "node_instance_types" {
  description = "EC2 instance types of the node group that runs the API, worker, relay and scheduler pods."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "node_count" {
  description = "Nodes of the application node group: desired, min and max."
  type = object({
    desired = number
    min     = number
    max     = number
  })
  default = { desired = 3, min = 3, max = 9 }

  validation {
    condition     = var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max
    error_message = "node_count must satisfy min <= desired <= max."
  }
}

variable "api_endpoint_allowed_cidrs" {
  description = "CIDRs allowed to reach the EKS API server's private endpoint (operators' VPN, CI runners); the public endpoint is off."
  type        = list(string)
  default     = []
}

variable "mq_instance_type" {
  description = "Amazon MQ for RabbitMQ broker instance type."
  type        = string
  default     = "mq.m5.large"
}

variable "mq_engine_version" {
  description = "Amazon MQ RabbitMQ engine version (major.minor; minor upgrades are automatic)."
  type        = string
  default     = "3.13"
}

variable "mq_deployment_mode" {
  description = "Amazon MQ deployment: CLUSTER_MULTI_AZ (three nodes, production) or SINGLE_INSTANCE (staging)."
  type        = string
  default     = "CLUSTER_MULTI_AZ"

  validation {
    condition     = contains(["CLUSTER_MULTI_AZ", "SINGLE_INSTANCE"], var.mq_deployment_mode)
    error_message = "mq_deployment_mode must be CLUSTER_MULTI_AZ or SINGLE_INSTANCE."
  }
}

variable "mq_admin_username" {
  description = "Name of the broker's bootstrap administrator. Its password is generated (random provider) and stored in Secrets Manager; Corridor's own user for the region's vhost is created with it after the first apply."
  type        = string
  default     = "corridor-admin"
}

variable "certificate_arn" {
  description = "ACM certificate (in the region's AWS region) for the API's HTTPS listener. Empty: the listener is not created (plan a first apply, then issue and validate the certificate)."
  type        = string
  default     = ""
}

variable "secret_names" {
  description = "Environment variable names whose values the region's processes read from Secrets Manager (database URLs from regions.yaml, CORRIDOR_API_KEY_PEPPER, AMQP_URL). Terraform creates the secrets empty; operators put the values."
  type        = list(string)

  validation {
    condition     = alltrue([for n in var.secret_names : can(regex("^[A-Z][A-Z0-9_]*$", n))])
    error_message = "secret_names must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the region's logs (control plane, containers, broker, WAF, flow logs)."
  type        = number
  default     = 400
}

variable "kms_deletion_window_days" {
  description = "Days a scheduled key deletion waits; the KEK wraps every data key of the region."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be 7 to 30."
  }
}

variable "kek_rotation_period_days" {
  description = "Days between automatic rotations of the region's key-encryption key (KMS keeps every backing key, so old wrapped keys still unwrap)."
  type        = number
  default     = 365

  validation {
    condition     = var.kek_rotation_period_days >= 90 && var.kek_rotation_period_days <= 2560
    error_message = "kek_rotation_period_days must be 90 to 2560 (KMS's range)."
  }
}

variable "app_namespace" {
  description = "Kubernetes namespace of Corridor's pods; the pod identity for KMS and Secrets Manager is bound to it."
  type        = string
  default     = "corridor"
}

variable "app_service_account" {
  description = "Kubernetes service account of Corridor's pods (API, worker, relay, scheduler)."
  type        = string
  default     = "corridor"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
