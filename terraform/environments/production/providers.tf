# Credentials come from each provider's environment (AWS_PROFILE, ARM_*, ALICLOUD_*,
# COCKROACH_API_KEY), never from this configuration.

provider "aws" {
  # Only the default for resources that name no region; every regional resource of
  # modules/region-aws sets its own.
  region = var.aws_default_region
}

provider "azurerm" {
  subscription_id = var.azure_subscription_id

  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
  }
}

# One alicloud configuration per Alibaba Cloud location in regions.yaml (the provider is
# bound to one region). China mainland locations usually sit in a separate account (China
# site), hence their own profile.
provider "alicloud" {
  alias   = "ap_southeast_1"
  region  = "ap-southeast-1"
  profile = var.alicloud_profiles.international
}

provider "alicloud" {
  alias   = "cn_shanghai"
  region  = "cn-shanghai"
  profile = var.alicloud_profiles.china
}

provider "cockroach" {}
