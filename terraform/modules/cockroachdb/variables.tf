variable "environment" {
  description = "Environment name (staging, production); part of every cluster's name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2 to 16 lowercase letters, digits or dashes."
  }
}

variable "clusters" {
  description = "The database clusters of regions.yaml (name, database_url_env, primary_region)."
  type = list(object({
    name             = string
    database_url_env = string
    primary_region   = string
  }))
}

variable "regions" {
  description = "The regions of regions.yaml (code, jurisdictions, cloud, location, cluster, sovereign, amqp_vhost, status)."
  type = list(object({
    code          = string
    jurisdictions = list(string)
    cloud         = string
    location      = string
    cluster       = string
    sovereign     = bool
    amqp_vhost    = string
    status        = string
    # The region's name in its cluster: the CockroachDB Cloud region hosting its rows on a
    # Cloud cluster; the node locality (default: the code) on a self-hosted one.
    database_region = optional(string)
  }))
}

variable "cloud" {
  description = "The CockroachDB Cloud (Advanced) cluster that serves every cluster without a sovereign region: its cloud provider, CockroachDB major version, per-node size and nodes per region."
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

  validation {
    condition     = contains(["AWS", "GCP", "AZURE"], var.cloud.provider)
    error_message = "cloud.provider must be AWS, GCP or AZURE (CockroachDB Cloud's clouds)."
  }

  validation {
    # READ COMMITTED is on by default from v24.1 (sql.txn.read_committed_isolation.enabled);
    # before that CockroachDB silently runs Corridor's READ COMMITTED transactions as
    # SERIALIZABLE.
    condition     = can(regex("^v(24\\.[1-9]|2[5-9]\\.[0-9]+|[3-9][0-9]\\.[0-9]+)$", var.cloud.cockroach_version))
    error_message = "cloud.cockroach_version must be v24.1 or later (vMAJOR.MINOR)."
  }

  validation {
    condition     = var.cloud.nodes_per_region >= 3
    error_message = "cloud.nodes_per_region must be at least 3 (a region survives a node's loss)."
  }
}

variable "self_hosted" {
  description = "Self-hosted clusters (those whose regions are sovereign): ECS instance type, node count, data disk size, the CockroachDB release (a tarball URL reachable from inside the location, e.g. an OSS mirror, and its SHA-256), and the KMS secret-name prefix of the node certificates."
  type = object({
    instance_type       = string
    node_count          = number
    data_disk_gib       = number
    binary_url          = string
    binary_sha256       = string
    certs_secret_prefix = string
  })

  validation {
    condition     = var.self_hosted.node_count >= 3
    error_message = "self_hosted.node_count must be at least 3."
  }

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.self_hosted.binary_sha256))
    error_message = "self_hosted.binary_sha256 must be the tarball's SHA-256 in lowercase hex."
  }
}

variable "self_hosted_location" {
  description = "The location (Alibaba Cloud region) of the alicloud provider passed in; every sovereign cluster must live there."
  type        = string
  default     = "cn-shanghai"
}

variable "self_hosted_network" {
  description = "Per sovereign cluster name: the network of its region (from modules/region-alicloud output network) and the region's platform KMS key and resource group."
  type = map(object({
    vpc_id            = string
    vpc_cidr          = string
    vswitch_ids       = list(string)
    zone_ids          = list(string)
    node_cidrs        = list(string)
    kms_key_id        = string
    resource_group_id = string
  }))
  default = {}
}

variable "backup_retention_days" {
  description = "Days the backups of every cluster are kept (CockroachDB Cloud accepts 2, 7, 30, 90 or 365)."
  type        = number
  default     = 30

  validation {
    condition     = contains([2, 7, 30, 90, 365], var.backup_retention_days)
    error_message = "backup_retention_days must be 2, 7, 30, 90 or 365."
  }
}

variable "labels" {
  description = "Labels/tags added to every cluster and instance."
  type        = map(string)
  default     = {}
}
