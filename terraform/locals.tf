locals {
  # Globally unique names (Key Vault, storage, registry, Redis) get a short
  # random suffix so two deployments of the same environment do not collide.
  base_name = "${var.name_prefix}-${var.environment}"
  flat_name = "${var.name_prefix}${var.environment}${random_string.suffix.result}"
  # The Kubernetes names the workloads use (kubernetes/ manifests).
  kubernetes_namespace = "jobs-platform"
  # Where the edge Gateways' NGINX data-plane pods run: NGINX Gateway Fabric
  # creates them in the Gateways' namespace (kubernetes/edge); their
  # access logs feed the 5xx alert. The control plane runs in nginx-gateway.
  edge_namespace = "jobs-platform-edge"
  # With redis_mode = "in-cluster" the manifests run Redis as this Service.
  in_cluster_redis_host = "redis.${local.kubernetes_namespace}.svc.cluster.local"
  # The URL the apps connect with, built here and nowhere else, with the
  # password percent-encoded: an Azure Managed Redis key is base64 and often
  # holds `/`, which would end the URL's authority. Stored in Key Vault as
  # `redis-address` (modules/keyvault).
  redis_address = (
    var.redis_mode == "azure-managed"
    ? module.redis[0].address
    : "redis://:${urlencode(random_password.in_cluster_redis[0].result)}@${local.in_cluster_redis_host}:6379"
  )
  results_container = "results"
  tags = merge(var.tags, {
    environment = var.environment
    project     = "jobs-platform"
  })
}
