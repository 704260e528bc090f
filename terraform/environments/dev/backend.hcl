# Partial azurerm backend configuration for dev:
#   terraform -chdir=terraform init -backend-config=environments/dev/backend.hcl
# The state storage account is created once by hand (docs/deploy/02-infrastructure.md)
# and is not managed by this configuration. Replace the account name with yours.
container_name       = "tfstate"
key                  = "jobs-platform/dev.tfstate"
resource_group_name  = "rg-jobs-tfstate"
storage_account_name = "stjobstfstate00000"
use_azuread_auth     = true
