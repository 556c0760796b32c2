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
    condition     = var.region.cloud == "azure"
    error_message = "region-azure deploys only regions whose cloud is azure."
  }
}

variable "vnet_cidr" {
  description = "IPv4 range of the region's VNet (a /16: node, gateway and private-endpoint subnets)."
  type        = string
  default     = "10.30.0.0/16"

  validation {
    condition     = can(cidrhost(var.vnet_cidr, 0)) && tonumber(split("/", var.vnet_cidr)[1]) <= 16
    error_message = "vnet_cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "kubernetes_version" {
  description = "AKS Kubernetes version (minor; patches follow automatic_upgrade_channel)."
  type        = string
  default     = "1.33"
}

variable "system_vm_size" {
  description = "VM size of the system node pool (critical add-ons only); must support ephemeral OS disks."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "app_vm_size" {
  description = "VM size of the node pool that runs the API, worker, relay, scheduler and RabbitMQ pods; must support ephemeral OS disks."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "app_node_count" {
  description = "Autoscaling bounds of the application node pool."
  type = object({
    min = number
    max = number
  })
  default = { min = 3, max = 9 }

  validation {
    condition     = var.app_node_count.min >= 1 && var.app_node_count.min <= var.app_node_count.max
    error_message = "app_node_count must satisfy 1 <= min <= max."
  }
}

variable "operator_cidrs" {
  description = "CIDRs of operators and CI allowed to reach the Key Vault data plane (Terraform writes keys and secrets from there)."
  type        = list(string)
  default     = []
}

variable "secret_names" {
  description = "Environment variable names whose values the region's processes read from Key Vault (database URLs from regions.yaml, CORRIDOR_API_KEY_PEPPER, AMQP_URL). Terraform creates them with a placeholder; operators put the values."
  type        = list(string)

  validation {
    condition     = alltrue([for n in var.secret_names : can(regex("^[A-Z][A-Z0-9_]*$", n))])
    error_message = "secret_names must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "certificate_issuer" {
  description = "Key Vault certificate issuer of the API's TLS certificate: a CA issuer configured in the vault (production), or Self (staging, a self-signed placeholder)."
  type        = string
  default     = "Self"
}

variable "api_hostname" {
  description = "Public hostname of the region's API (the TLS certificate's subject)."
  type        = string
}

variable "gitops_repository" {
  description = "Git repository and branch Flux reconciles the RabbitMQ manifests from (this repository's terraform/modules/region-azure/manifests/rabbitmq)."
  type = object({
    url    = string
    branch = string
  })
}

variable "log_retention_days" {
  description = "Days the Log Analytics workspace keeps the region's logs."
  type        = number
  default     = 365
}

variable "kek_rotation_period" {
  description = "ISO 8601 duration after which Key Vault rotates the region's key-encryption key (older versions stay and still unwrap)."
  type        = string
  default     = "P365D"
}

variable "app_namespace" {
  description = "Kubernetes namespace of Corridor's pods; the workload identity is federated to its service account."
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
