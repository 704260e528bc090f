output "hostname" {
  description = "Host name of the cache; inside the virtual network it resolves to the private endpoint."
  value       = azurerm_redis_cache.this.hostname
}

output "port" {
  description = "Non-TLS port (Spin Redis trigger)."
  value       = azurerm_redis_cache.this.port
}

output "redis_id" {
  description = "Resource id of the cache."
  value       = azurerm_redis_cache.this.id
}

output "ssl_port" {
  description = "TLS port, for clients that can use it."
  value       = azurerm_redis_cache.this.ssl_port
}
