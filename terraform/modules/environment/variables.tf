variable "environment" {
  description = "Environment name (staging, production)."
  type        = string
}

variable "topology" {
  description = "regions.yaml as yamldecode reads it: control plane, clusters and regions."
  type = object({
    version = number
    control = object({
      cluster          = string
      database_url_env = string
    })
    clusters = list(object({
      name             = string
      database_url_env = string
      primary_region   = string
    }))
    regions = list(object({
      code          = string
      jurisdictions = list(string)
      cloud         = string
      location      = string
      cluster       = string
      sovereign     = bool
      amqp_vhost    = string
      status        = string
      # The name the cluster knows the region by (regions/ddl.py); the code when absent.
      database_region = optional(string)
    }))
  })

  validation {
    condition     = var.topology.version == 1
    error_message = "regions.yaml version ${var.topology.version} is not 1, the version these modules read."
  }

  # regions.yaml accepts aws, azure, alibaba and gcp; there is no gcp module.
  validation {
    condition     = alltrue([for r in var.topology.regions : contains(["aws", "azure", "alibaba"], r.cloud)])
    error_message = "No Terraform module deploys the cloud of region(s) ${join(", ", [for r in var.topology.regions : "${r.code} (${r.cloud})" if !contains(["aws", "azure", "alibaba"], r.cloud)])}: modules exist for aws, azure and alibaba only."
  }

  validation {
    condition     = alltrue([for r in var.topology.regions : r.cloud != "alibaba" || contains(["ap-southeast-1", "cn-shanghai"], r.location)])
    error_message = "Alibaba Cloud region(s) ${join(", ", [for r in var.topology.regions : "${r.code} (${r.location})" if r.cloud == "alibaba" && !contains(["ap-southeast-1", "cn-shanghai"], r.location)])} use a location without an alicloud provider: add a provider alias and a module block for it (modules/environment/regions.tf)."
  }
}

variable "api_domain" {
  description = "DNS domain under which each region's API is served as api-<region code>.<api_domain>."
  type        = string
}

variable "tls_certificates" {
  description = "Region code -> certificate of its API listener (AWS: ACM ARN; Alibaba: certificate id; Azure issues its own in Key Vault). A region without one gets no HTTPS listener yet."
  type        = map(string)
  default     = {}
}

variable "operator_cidrs" {
  description = "CIDRs of operators and CI: the EKS API endpoint and the Key Vault data plane accept them."
  type        = list(string)
  default     = []
}

variable "gitops_repository" {
  description = "Git repository and branch that Flux on AKS reconciles the RabbitMQ manifests from."
  type = object({
    url    = string
    branch = string
  })
}

variable "aws" {
  description = "Sizing of AWS regions: application nodes, node types, Amazon MQ instance type and deployment mode."
  type = object({
    node_count          = object({ desired = number, min = number, max = number })
    node_instance_types = list(string)
    mq_instance_type    = string
    mq_deployment_mode  = string
  })
  default = {
    node_count          = { desired = 3, min = 3, max = 9 }
    node_instance_types = ["m7i.large"]
    mq_instance_type    = "mq.m5.large"
    mq_deployment_mode  = "CLUSTER_MULTI_AZ"
  }
}

variable "azure" {
  description = "Sizing of Azure regions: application node pool bounds and VM size."
  type = object({
    app_node_count = object({ min = number, max = number })
    app_vm_size    = string
  })
  default = {
    app_node_count = { min = 3, max = 9 }
    app_vm_size    = "Standard_D4ds_v5"
  }
}

variable "alicloud" {
  description = "Sizing of Alibaba Cloud regions: application node pool bounds, instance types and ApsaraMQ for RabbitMQ instance."
  type = object({
    node_count          = object({ min = number, max = number })
    node_instance_types = list(string)
    amqp_instance       = object({ instance_type = string, max_tps = number, queue_capacity = number })
  })
  default = {
    node_count          = { min = 3, max = 9 }
    node_instance_types = ["ecs.g7.xlarge"]
    amqp_instance       = { instance_type = "enterprise", max_tps = 3000, queue_capacity = 200 }
  }
}

variable "cockroach_cloud" {
  description = "The CockroachDB Cloud cluster(s) of non-sovereign clusters: cloud provider, major version, vCPUs and storage per node, nodes per region."
  type = object({
    provider          = string
    cockroach_version = string
    num_virtual_cpus  = number
    storage_gib       = number
    nodes_per_region  = number
  })
  default = {
    provider          = "AWS"
    cockroach_version = "v25.2"
    num_virtual_cpus  = 4
    storage_gib       = 150
    nodes_per_region  = 3
  }
}

variable "cockroach_self_hosted" {
  description = "Self-hosted clusters of sovereign regions: ECS instance type, node count, data disk, the CockroachDB tarball (reachable from inside the location) and its SHA-256, and the KMS secret-name prefix of the node certificates."
  type = object({
    instance_type       = string
    node_count          = number
    data_disk_gib       = number
    binary_url          = string
    binary_sha256       = string
    certs_secret_prefix = string
  })
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
