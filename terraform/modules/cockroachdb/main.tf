# Corridor's CockroachDB clusters, one per cluster of regions.yaml:
# - a cluster none of whose regions is sovereign (global) is a multi-region CockroachDB Cloud
#   (Advanced) cluster with a region per Corridor region (cloud.tf);
# - a cluster of sovereign regions (cn) is self-hosted on ECS instances inside the region's
#   location, with node localities named by Corridor's region codes (self_hosted.tf).
# Both run Corridor's transactions at READ COMMITTED: the setting is applied at bootstrap on
# self-hosted clusters and is the default of every CockroachDB Cloud version this module
# accepts (v24.1+); output cluster_settings_sql repeats it for an explicit apply.

locals {
  regions_by_cluster = { for c in var.clusters : c.name => [for r in var.regions : r if r.cluster == c.name] }

  sovereign_clusters = {
    for c in var.clusters : c.name => c
    if length(local.regions_by_cluster[c.name]) > 0 && alltrue([for r in local.regions_by_cluster[c.name] : r.sovereign])
  }
  cloud_clusters = {
    for c in var.clusters : c.name => c
    if length(local.regions_by_cluster[c.name]) > 0 && !contains(keys(local.sovereign_clusters), c.name)
  }

  cloud_provider = lower(var.cloud.provider)

  # Corridor region code -> the CockroachDB Cloud region that hosts its rows: regions.yaml's
  # database_region, which regions/ddl.py also gives the database (ADD REGION, crdb_region).
  cloud_region = {
    for r in var.regions : r.code => r.database_region
    if contains(keys(local.cloud_clusters), r.cluster)
  }
  # A region on the Cloud cluster's own cloud keeps its rows in its own location.
  misplaced = [
    for r in var.regions : r.code
    if contains(keys(local.cloud_clusters), r.cluster) && lower(r.cloud) == local.cloud_provider && r.database_region != null && r.database_region != r.location
  ]

  cluster_settings_sql = [
    "SET CLUSTER SETTING sql.txn.read_committed_isolation.enabled = true",
  ]
}

resource "terraform_data" "topology_checks" {
  input = [for c in var.clusters : c.name]

  lifecycle {
    precondition {
      condition     = alltrue([for code, name in local.cloud_region : name != null])
      error_message = "Every region of a CockroachDB Cloud cluster needs database_region in regions.yaml, the ${var.cloud.provider} region that hosts its rows: ${jsonencode([for code, name in local.cloud_region : code if name == null])} have none."
    }

    precondition {
      condition     = length(local.misplaced) == 0
      error_message = "Regions on ${var.cloud.provider} keep their rows in their own location: database_region of ${jsonencode(local.misplaced)} must equal their location."
    }

    precondition {
      condition     = alltrue([for name, c in local.cloud_clusters : length(distinct([for r in local.regions_by_cluster[name] : local.cloud_region[r.code]])) == length(local.regions_by_cluster[name])])
      error_message = "Two Corridor regions of one CockroachDB Cloud cluster map to the same cloud region; each needs its own."
    }

    precondition {
      condition     = alltrue(flatten([for name, c in local.sovereign_clusters : [for r in local.regions_by_cluster[name] : r.cloud == "alibaba" && r.location == var.self_hosted_location]]))
      error_message = "Sovereign clusters are self-hosted on Alibaba Cloud in ${var.self_hosted_location} (the alicloud provider passed in); a sovereign region elsewhere needs its own provider and module call."
    }

    precondition {
      condition     = alltrue([for name, c in local.sovereign_clusters : contains(keys(var.self_hosted_network), name)])
      error_message = "self_hosted_network must give the network of every sovereign cluster: ${jsonencode(keys(local.sovereign_clusters))}."
    }

    precondition {
      condition     = alltrue([for name, c in local.sovereign_clusters : length(local.regions_by_cluster[name]) == 1])
      error_message = "A sovereign cluster serves exactly one region (its nodes carry that region's code as locality)."
    }
  }
}
