terraform {
  # 1.9: validations may refer to other variables. The AWS provider 6 gives every regional
  # resource a `region` argument, so one provider configuration serves every AWS region and
  # this module can be instantiated with for_each.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
