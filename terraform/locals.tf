locals {
  # Globally unique names (Key Vault, storage, registry, Redis) get a short
  # random suffix so two deployments of the same environment do not collide.
  base_name = "${var.name_prefix}-${var.environment}"
  flat_name = "${var.name_prefix}${var.environment}${random_string.suffix.result}"
  # The Kubernetes names the workloads use (kubernetes/ manifests).
  kubernetes_namespace = "jobs-platform"
  results_container    = "results"
  tags = merge(var.tags, {
    environment = var.environment
    project     = "jobs-platform"
  })
}
