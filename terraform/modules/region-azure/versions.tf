terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  # Every azurerm resource takes its `location`, so one provider configuration (one
  # subscription) serves every Azure region and this module can be instantiated with for_each.
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}
