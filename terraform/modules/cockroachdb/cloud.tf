# CockroachDB Cloud (Advanced) for the clusters without sovereign regions. A CockroachDB
# Cloud cluster runs on one cloud and names its regions after that cloud's (for example
# eu-central-1), not after Corridor's region codes: output database_regions maps one to the
# other. regions/ddl.py adds database regions named by Corridor's codes, which such a cluster
# does not know (README: "Limits").

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
