terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
    alicloud = {
      source  = "aliyun/alicloud"
      version = "~> 1.252"
    }
    cockroach = {
      source  = "cockroachdb/cockroach"
      version = "~> 1.12"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The state holds generated broker passwords and every resource id: keep it in an encrypted
  # backend with locking, configured at `terraform init -backend-config=...` (README: "State").
}
