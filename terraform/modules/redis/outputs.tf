output "address" {
  description = "The URL the apps connect with, `redis://:<key>@<host>:<port>`, the access key percent-encoded (keys are base64 and may hold `/`, `+` and `=`)."
  sensitive   = true
  value       = "redis://:${urlencode(azurerm_managed_redis.this.default_database[0].primary_access_key)}@${azurerm_managed_redis.this.hostname}:${azurerm_managed_redis.this.default_database[0].port}"
}

output "hostname" {
  description = "Host name of the instance; inside the virtual network it resolves to the private endpoint."
  value       = azurerm_managed_redis.this.hostname
}

output "port" {
  description = "Port of the database (plaintext protocol)."
  value       = azurerm_managed_redis.this.default_database[0].port
}

output "redis_id" {
  description = "Resource id of the instance."
  value       = azurerm_managed_redis.this.id
}
