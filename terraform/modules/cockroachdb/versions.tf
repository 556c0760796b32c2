terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    cockroach = {
      source  = "cockroachdb/cockroach"
      version = "~> 1.12"
    }
    # The sovereign cluster's nodes: ECS instances in the location of its region. The caller
    # passes the alicloud provider configured for that location (cn-shanghai for cluster cn).
    alicloud = {
      source  = "aliyun/alicloud"
      version = "~> 1.252"
    }
  }
}
