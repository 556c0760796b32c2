variable "environment" {
  description = "Environment name (staging, production); part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2 to 16 lowercase letters, digits or dashes."
  }
}

variable "region" {
  description = "The Corridor region as regions.yaml describes it (code, jurisdictions, cloud, location, cluster, sovereign, amqp_vhost, status). The alicloud provider passed in must be configured for its location."
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
    condition     = var.region.cloud == "alibaba"
    error_message = "region-alicloud deploys only regions whose cloud is alibaba."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the region's VPC (a /16: node, pod and load-balancer vSwitches per zone)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "zone_ids" {
  description = "Zones to spread over (2 or 3). Empty: the first three zones where ALB is offered."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.zone_ids) == 0 || (length(var.zone_ids) >= 2 && length(var.zone_ids) <= 3)
    error_message = "zone_ids must be empty or name 2 or 3 zones."
  }
}

variable "kubernetes_version" {
  description = "ACK Kubernetes version (for example 1.33.1-aliyun.1). null: the newest ACK offers at creation; pin it afterwards."
  type        = string
  default     = null
}

variable "node_instance_types" {
  description = "ECS instance types of the node pool that runs the API, worker, relay and scheduler pods."
  type        = list(string)
  default     = ["ecs.g7.xlarge"]
}

variable "node_count" {
  description = "Autoscaling bounds of the application node pool."
  type = object({
    min = number
    max = number
  })
  default = { min = 3, max = 9 }

  validation {
    condition     = var.node_count.min >= 1 && var.node_count.min <= var.node_count.max
    error_message = "node_count must satisfy 1 <= min <= max."
  }
}

variable "amqp_instance" {
  description = "ApsaraMQ for RabbitMQ instance: edition (professional, enterprise, vip), private TPS peak and queue capacity."
  type = object({
    instance_type  = string
    max_tps        = number
    queue_capacity = number
  })
  default = { instance_type = "enterprise", max_tps = 3000, queue_capacity = 200 }
}

variable "kms_instance_id" {
  description = "Dedicated KMS instance to create the region's keys in (required for HSM protection on KMS 3.0). null: the account's default KMS."
  type        = string
  default     = null
}

variable "kek_rotation_interval" {
  description = "Interval between automatic rotations of the region's key-encryption key, in seconds with an s suffix (KMS keeps every version)."
  type        = string
  default     = "31536000s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.kek_rotation_interval))
    error_message = "kek_rotation_interval must be seconds with an s suffix, e.g. 31536000s."
  }
}

variable "certificate_id" {
  description = "Certificate (Certificate Management Service id) of the API's HTTPS listener. Empty: the listener is not created until the certificate is uploaded."
  type        = string
  default     = ""
}

variable "secret_names" {
  description = "Environment variable names whose values the region's processes read from KMS Secrets Manager (database URLs from regions.yaml, CORRIDOR_API_KEY_PEPPER, AMQP_URL). Terraform creates them with a placeholder; operators put the values."
  type        = list(string)

  validation {
    condition     = alltrue([for n in var.secret_names : can(regex("^[A-Z][A-Z0-9_]*$", n))])
    error_message = "secret_names must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "log_retention_days" {
  description = "Days Simple Log Service keeps the region's logs."
  type        = number
  default     = 400
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
