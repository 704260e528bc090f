# Partial azurerm backend configuration for prod:
#   terraform -chdir=terraform init -backend-config=environments/prod/backend.hcl
# Same state account as dev, separate state file. Replace the account name with yours.
container_name       = "tfstate"
key                  = "jobs-platform/prod.tfstate"
resource_group_name  = "rg-jobs-tfstate"
storage_account_name = "stjobstfstate00000"
use_azuread_auth     = true
