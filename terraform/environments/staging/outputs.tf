output "regions" {
  description = "Every deployed region as regions.yaml describes it."
  value       = module.corridor.regions
}

output "database_url_env" {
  description = "Per region: database URL variable (regions.yaml database_url_env) -> secret reference. No values."
  value       = module.corridor.database_url_env
}

output "secret_refs" {
  description = "Per region: every environment variable read from the secret store -> secret reference."
  value       = module.corridor.secret_refs
}

output "amqp" {
  description = "Per region: RabbitMQ endpoint (no credentials), vhost, and the AMQP_URL secret."
  value       = module.corridor.amqp
}

output "key_providers" {
  description = "CORRIDOR_KEY_PROVIDER_<REGION> -> value, where the application has an adapter for the region's KEK."
  value       = module.corridor.key_providers
}

output "kek_key_ids" {
  description = "Per region: the KEK's key id and the application adapter that reads it."
  value       = module.corridor.kek_key_ids
}

output "load_balancers" {
  description = "Per region: API hostname and load balancer (TLS 1.3 only)."
  value       = module.corridor.load_balancers
}

output "kubernetes_clusters" {
  description = "Per region: Kubernetes cluster and workload identities."
  value       = module.corridor.kubernetes_clusters
}

output "databases" {
  description = "Database clusters, the region names they know, and Corridor's cluster settings."
  value       = module.corridor.databases
}
