output "regions" {
  description = "Every deployed region as regions.yaml describes it (cloud, location, cluster, sovereign)."
  value = {
    for code, r in local.regions : code => {
      cloud     = r.cloud
      location  = r.location
      cluster   = r.cluster
      sovereign = r.sovereign
    }
  }
}

output "database_url_env" {
  description = "Per region: each database URL variable of regions.yaml (database_url_env, and the control plane's) -> the secret holding its value in the region's secret store. References only, never values."
  value = {
    for code, m in local.region_modules : code => { for name in local.database_url_envs : name => m.secret_refs[name] }
  }
}

output "secret_refs" {
  description = "Per region: every environment variable the processes read from the secret store (database URLs, CORRIDOR_API_KEY_PEPPER, AMQP_URL) -> secret reference."
  value       = { for code, m in local.region_modules : code => m.secret_refs }
}

output "amqp" {
  description = "Per region: RabbitMQ endpoint without credentials, the region's vhost, and the secret holding AMQP_URL."
  value       = { for code, m in local.region_modules : code => m.amqp }
}

output "key_providers" {
  description = "CORRIDOR_KEY_PROVIDER_<REGION> -> value for every region (aws-kms, azure-keyvault or alicloud-kms)."
  value = {
    for code, m in local.region_modules : "CORRIDOR_KEY_PROVIDER_${upper(replace(code, "-", "_"))}" => m.key_provider
    if m.key_provider != null
  }
}

output "kek_key_ids" {
  description = "Per region: the KEK's cloud, key id, and the application adapter that reads it."
  value = {
    for code, m in local.region_modules : code => {
      cloud       = local.regions[code].cloud
      key_id      = m.kek_key_id
      app_adapter = split(":", m.key_provider)[0]
    }
  }
}

output "load_balancers" {
  description = "Per region: the API hostname and the load balancer it must point at (TLS 1.3 only)."
  value = {
    for code, m in local.region_modules : code => merge(m.load_balancer, { hostname = local.api_hostname[code] })
  }
}

output "kubernetes_clusters" {
  description = "Per region: the Kubernetes cluster running the API, worker, relay and scheduler, and the workload identities of their service accounts."
  value = {
    for code, m in local.region_modules : code => merge(m.kubernetes_cluster, { workload_identity = m.workload_identity })
  }
}

output "databases" {
  description = "The database clusters (hosting, database_url_env, regions, SQL hosts), the region names each cluster knows, and the cluster settings Corridor needs."
  value = {
    clusters             = module.cockroachdb.clusters
    database_regions     = module.cockroachdb.database_regions
    cluster_settings_sql = module.cockroachdb.cluster_settings_sql
  }
}
