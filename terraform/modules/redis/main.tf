# Azure Managed Redis for the job queue (Spin Redis trigger, pub/sub) and the
# key-value store.
#
# Spin's Redis trigger has no TLS (spin issue 2448), so the database speaks the
# plaintext protocol (`client_protocol = "Plaintext"`) on its port 10000. It is
# reachable only through the private endpoint: public network access is off
# and the private endpoint subnet's NSG admits 10000 from the AKS subnet only
# (modules/networking). Access keys stay on because the trigger authenticates
# with a password in its URL; the key reaches the apps only through Key Vault.
#
# `NoCluster`: one shard behind one endpoint, so a client that knows nothing of
# Redis Cluster (the trigger, the outbound Redis interface) works, and the
# platform's Lua scripts may touch several keys without hash tags.
resource "azurerm_managed_redis" "this" {
  high_availability_enabled = var.high_availability_enabled
  location                  = var.location
  name                      = var.name
  public_network_access     = "Disabled"
  resource_group_name       = var.resource_group_name
  sku_name                  = var.sku_name
  tags                      = var.tags

  default_database {
    access_keys_authentication_enabled = true
    client_protocol                    = "Plaintext"
    clustering_policy                  = "NoCluster"
    # The queue is data, not a cache: never evict, persist every write. At
    # maxmemory writes fail with OOM (the API answers 503) rather than Redis
    # silently evicting keys; volatile-* policies would evict the keys that
    # have a TTL first, which are finished jobs and idempotency keys.
    eviction_policy                               = "NoEviction"
    persistence_append_only_file_backup_frequency = "1s"
  }
}

resource "azurerm_private_dns_zone" "redis" {
  name                = "privatelink.redis.azure.net"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "redis" {
  name                  = "vnet-link"
  private_dns_zone_name = azurerm_private_dns_zone.redis.name
  registration_enabled  = false
  resource_group_name   = var.resource_group_name
  tags                  = var.tags
  virtual_network_id    = var.virtual_network_id
}

resource "azurerm_private_endpoint" "redis" {
  location            = var.location
  name                = "pe-${var.name}"
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [azurerm_private_dns_zone.redis.id]
  }
  private_service_connection {
    is_manual_connection           = false
    name                           = "psc-${var.name}"
    private_connection_resource_id = azurerm_managed_redis.this.id
    subresource_names              = ["redisEnterprise"]
  }
}
