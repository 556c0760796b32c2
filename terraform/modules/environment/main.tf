# One Corridor environment: every region of regions.yaml on its cloud's module, the database
# clusters, and the outputs the application's configuration reads. Adding a region is one
# entry in regions.yaml; the region modules are instantiated with for_each over the regions
# of each cloud (and, on Alibaba Cloud, of each location, see regions.tf).

locals {
  regions  = { for r in var.topology.regions : r.code => r }
  clusters = { for c in var.topology.clusters : c.name => c }

  regions_on = {
    for cloud in ["aws", "azure", "alibaba"] : cloud => { for code, r in local.regions : code => r if r.cloud == cloud }
  }

  # Alibaba Cloud locations with an alicloud provider alias and a module block (regions.tf).
  alicloud_locations = ["ap-southeast-1", "cn-shanghai"]
  alibaba_regions_in = {
    for location in local.alicloud_locations : location => { for code, r in local.regions_on["alibaba"] : code => r if r.location == location }
  }

  # The application reads every cluster's URL and the control plane's (api/settings.py), the
  # API key pepper, and AMQP_URL; each region's secret store holds one entry per name.
  database_url_envs = distinct(concat([var.topology.control.database_url_env], [for c in var.topology.clusters : c.database_url_env]))
  secret_names      = concat(local.database_url_envs, ["CORRIDOR_API_KEY_PEPPER", "AMQP_URL"])

  api_hostname = { for code, r in local.regions : code => "api-${code}.${var.api_domain}" }

  tags = merge(var.tags, { "corridor-environment" = var.environment, "managed-by" = "terraform" })
}
