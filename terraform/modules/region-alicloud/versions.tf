terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  # The alicloud provider is bound to one region (its `region` argument; resources take none),
  # so the caller passes the provider configuration of the region's location; see
  # modules/environment.
  required_providers {
    alicloud = {
      source  = "aliyun/alicloud"
      version = "~> 1.252"
    }
  }
}
