variable "aws_default_region" {
  description = "AWS region for resources that name none (every regional resource of the AWS module names its own)."
  type        = string
  default     = "eu-central-1"
}

variable "azure_subscription_id" {
  description = "Azure subscription the Azure regions are deployed in."
  type        = string
}

variable "alicloud_profiles" {
  description = "Alibaba Cloud CLI profiles (credentials) for the international locations and for the China mainland account."
  type = object({
    international = string
    china         = string
  })
  default = {
    international = "corridor-production-intl"
    china         = "corridor-production-cn"
  }
}

variable "api_domain" {
  description = "DNS domain of the regions' APIs (api-<region code>.<api_domain>)."
  type        = string
  default     = "corridor.example"
}

variable "tls_certificates" {
  description = "Region code -> certificate of its API's HTTPS listener (AWS: ACM ARN; Alibaba: certificate id). Regions without one get no listener yet."
  type        = map(string)
  default     = {}
}

variable "operator_cidrs" {
  description = "CIDRs of operators and CI (EKS API endpoint, Key Vault data plane)."
  type        = list(string)
  default     = []
}

variable "gitops_repository" {
  description = "Git repository and branch Flux on AKS reconciles the RabbitMQ manifests from."
  type = object({
    url    = string
    branch = string
  })
}

variable "cockroach_binary" {
  description = "CockroachDB release tarball for the self-hosted (sovereign) cluster: a URL reachable from inside its location (an OSS mirror in cn-shanghai) and its SHA-256."
  type = object({
    url    = string
    sha256 = string
  })
}
