# CockroachDB Cloud (Advanced) for the clusters without sovereign regions. A CockroachDB
# Cloud cluster runs on one cloud and names its regions after that cloud's (for example
# eu-central-1), not after Corridor's region codes: each region's database_region in
# regions.yaml names the cloud region hosting its rows. regions/ddl.py adds those database
# regions and homes every row by a column computed from its code; output database_regions
# repeats the mapping.

resource "cockroach_cluster" "shared" {
  for_each          = local.cloud_clusters
  name              = "corridor-${var.environment}-${each.key}"
  cloud_provider    = var.cloud.provider
  plan              = "ADVANCED"
  cockroach_version = var.cloud.cockroach_version
  delete_protection = true
  labels            = merge(var.labels, { "corridor-environment" = var.environment, "corridor-cluster" = each.key })

  dedicated = {
    num_virtual_cpus           = var.cloud.num_virtual_cpus
    storage_gib                = var.cloud.storage_gib
    private_network_visibility = true
  }

  regions = [
    for r in local.regions_by_cluster[each.key] : {
      name       = local.cloud_region[r.code]
      node_count = var.cloud.nodes_per_region
    }
  ]

  backup_config = {
    enabled           = true
    frequency_minutes = 60
    retention_days    = var.backup_retention_days
  }

  depends_on = [terraform_data.topology_checks]
}
