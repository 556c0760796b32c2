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
    # The alicloud provider serves one location per configuration, so the caller passes one
    # per Alibaba Cloud location that regions.yaml uses (local.alicloud_locations).
    alicloud = {
      source                = "aliyun/alicloud"
      version               = "~> 1.252"
      configuration_aliases = [alicloud.ap_southeast_1, alicloud.cn_shanghai]
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
}
