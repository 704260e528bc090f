# Azure Cache for Redis for the job queue (Spin Redis trigger, pub/sub) and
# the key-value store.
#
# Trade-off: Spin's Redis trigger cannot speak TLS (spin issue 2448), so the
# non-TLS port 6379 is on. It is reachable only through the private endpoint:
# public network access is off and the private endpoint subnet's NSG admits
# only the AKS subnet (modules/networking). Passwords still cross the virtual
# network in clear text; see terraform/README.md for the migration path.
resource "azurerm_redis_cache" "this" {
  # checkov:skip=CKV_AZURE_230:Dev uses Basic C0 (single node, no replication) to stay cheap; prod sets Standard (primary and replica) in environments/prod/terraform.tfvars.
  capacity                      = var.sku.capacity
  family                        = var.sku.family
  location                      = var.location
  minimum_tls_version           = "1.2"
  name                          = var.name
  non_ssl_port_enabled          = true
  public_network_access_enabled = false
  redis_version                 = "6"
  resource_group_name           = var.resource_group_name
  sku_name                      = var.sku.name
  tags                          = var.tags

  # noeviction: at maxmemory writes fail with OOM (the API answers 503) rather
  # than Redis silently evicting keys; the service's default, volatile-lru,
  # would evict the keys that have a TTL first, which are finished jobs and
  # idempotency keys.
  redis_configuration {
    authentication_enabled = true
    maxmemory_policy       = "noeviction"
  }
}

resource "azurerm_private_dns_zone" "redis" {
  name                = "privatelink.redis.cache.windows.net"
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
    private_connection_resource_id = azurerm_redis_cache.this.id
    subresource_names              = ["redisCache"]
  }
}
