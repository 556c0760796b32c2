# RabbitMQ on AKS. Azure has no managed RabbitMQ, and a module instantiated with for_each
# cannot carry its own helm/kubernetes provider (provider configurations cannot be per
# instance), so the cluster's Flux extension (GitOps, an Azure resource) reconciles
# manifests/rabbitmq from this repository: the RabbitMQ cluster operator and a three-node
# RabbitmqCluster whose default vhost is the region's amqp_vhost. The operator generates the
# default user into the Kubernetes secret rabbitmq-default-user; operators copy the resulting
# URL into the AMQP-URL Key Vault secret (README: "Secrets").

resource "azurerm_kubernetes_cluster_extension" "flux" {
  name           = "flux"
  cluster_id     = azurerm_kubernetes_cluster.this.id
  extension_type = "microsoft.flux"
}

resource "azurerm_kubernetes_flux_configuration" "rabbitmq" {
  name       = "rabbitmq"
  cluster_id = azurerm_kubernetes_cluster.this.id
  namespace  = "flux-system"
  scope      = "cluster"

  git_repository {
    url             = var.gitops_repository.url
    reference_type  = "branch"
    reference_value = var.gitops_repository.branch
  }

  kustomizations {
    name                       = "rabbitmq"
    path                       = "./terraform/modules/region-azure/manifests/rabbitmq"
    garbage_collection_enabled = true

    post_build {
      substitute = {
        CORRIDOR_REGION     = var.region.code
        CORRIDOR_AMQP_VHOST = var.region.amqp_vhost
        CORRIDOR_NAMESPACE  = var.app_namespace
      }
    }
  }

  depends_on = [azurerm_kubernetes_cluster_extension.flux]
}
