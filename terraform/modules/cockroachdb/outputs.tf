output "clusters" {
  description = "Every cluster of regions.yaml: how it is hosted, the environment variable its URL goes in (database_url_env), its Corridor regions, and where clients connect (no credentials)."
  value = merge(
    {
      for name, c in local.cloud_clusters : name => {
        hosting          = "cockroachdb-cloud"
        database_url_env = c.database_url_env
        regions          = [for r in local.regions_by_cluster[name] : r.code]
        cluster_id       = cockroach_cluster.shared[name].id
        sql_hosts        = { for r in cockroach_cluster.shared[name].regions : r.name => r.sql_dns }
      }
    },
    {
      for name, c in local.sovereign_clusters : name => {
        hosting          = "self-hosted"
        database_url_env = c.database_url_env
        regions          = [for r in local.regions_by_cluster[name] : r.code]
        cluster_id       = null
        sql_hosts        = { for k, n in local.self_hosted_nodes : k => "${n.ip}:26257" if n.cluster == name }
      }
    },
  )
}

output "database_regions" {
  description = "Corridor region code -> the region name its cluster knows (SHOW REGIONS FROM CLUSTER): the code itself on self-hosted clusters, the cloud's region on CockroachDB Cloud."
  value = merge(
    local.cloud_region,
    { for k, n in local.self_hosted_nodes : n.region => n.region },
  )
}

output "cluster_settings_sql" {
  description = "Cluster settings Corridor needs on every cluster (applied at bootstrap on self-hosted clusters; the default on CockroachDB Cloud v24.1+; run them as admin to make them explicit)."
  value       = local.cluster_settings_sql
}
