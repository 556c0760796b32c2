output "region_code" {
  description = "The Corridor region this module deployed."
  value       = var.region.code
}

output "vnet_id" {
  description = "The region's VNet."
  value       = azurerm_virtual_network.this.id
}

output "kubernetes_cluster" {
  description = "The AKS cluster that runs the API, worker, relay, scheduler and RabbitMQ pods."
  value = {
    name           = azurerm_kubernetes_cluster.this.name
    resource_group = azurerm_resource_group.this.name
    private_fqdn   = azurerm_kubernetes_cluster.this.private_fqdn
  }
}

output "kek_key_id" {
  description = "Versionless id of the region's key-encryption key in Key Vault (RSA-HSM, wrapKey/unwrapKey)."
  value       = azurerm_key_vault_key.kek.versionless_id
}

output "key_provider" {
  description = "Value of CORRIDOR_KEY_PROVIDER_<REGION> for this region (regions/azure_keys.py)."
  value       = "azure-keyvault:${azurerm_key_vault_key.kek.versionless_id}"
}

output "secret_refs" {
  description = "Environment variable name -> Key Vault secret (versionless id) holding its value (no values)."
  value       = { for name, s in azurerm_key_vault_secret.app : name => s.versionless_id }
}

output "amqp" {
  description = "The region's RabbitMQ: in-cluster endpoint without credentials, vhost, and the secret holding the full AMQP_URL."
  value = {
    endpoint   = "amqp://rabbitmq.rabbitmq.svc.cluster.local:5672"
    vhost      = var.region.amqp_vhost
    url_secret = azurerm_key_vault_secret.app["AMQP_URL"].versionless_id
  }
}

output "load_balancer" {
  description = "Public IP of the region's Application Gateway (point the API hostname here), its TLS policy, and the internal address the API Service must take."
  value = {
    public_ip      = azurerm_public_ip.gateway.ip_address
    tls_policy     = "CustomV2, min TLSv1_3"
    api_backend_ip = local.api_backend_ip
  }
}

output "workload_identity" {
  description = "Client id of the managed identity federated to the pods' service account (namespace/service account -> client id)."
  value = {
    "${var.app_namespace}/${var.app_service_account}" = azurerm_user_assigned_identity.app.client_id
  }
}
