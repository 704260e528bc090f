#!/usr/bin/env bash
# Offline checks for the GitHub Actions side: the workflows, the composite
# actions, Dependabot and the deploy scripts they call. Runs every check, then
# exits non-zero if any of them found something.
#
#   actionlint   workflow syntax, expressions, job wiring, and shellcheck on
#                every `run:` block (shellcheck from .venv/tools on PATH)
#   ShellCheck   scripts/deploy.sh, scripts/smoke.sh and this script
#   yamllint     .github/ (YAML hygiene)
#   zizmor       security audit, offline, medium and high findings fail
#                (low ones are explained in docs/ci-cd.md)
#   project      tests/infra/workflow_checks.py: the four stages and their
#                triggers, SHA pins, permissions, OIDC-only Azure sign-in,
#                concurrency, Terraform plan/apply, deploy overlays, Dependabot
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

TOOLS="$VENV_DIR/tools/bin"
[ -x "$TOOLS/actionlint" ] || die "$TOOLS/actionlint not found: run scripts/bootstrap.sh"
# actionlint runs shellcheck from PATH on the `run:` blocks.
export PATH="$TOOLS:$PATH"


workflows=(.github/workflows/*.yml)

check "actionlint + shellcheck (${#workflows[@]} workflows)" \
    "$TOOLS/actionlint" -no-color -shellcheck="$TOOLS/shellcheck" "${workflows[@]}"

check "shellcheck (every script in scripts/ and .ci/run)" \
    "$TOOLS/shellcheck" -x scripts/*.sh .ci/run

check "yamllint (.github)" "$TOOLS/yamllint" --strict -d "{
    extends: default,
    rules: {
        document-start: disable,
        truthy: {check-keys: false},
        line-length: {max: 160},
        comments: {min-spaces-from-content: 1}
    }
}" .github

check "zizmor --offline (medium and high findings)" \
    "$TOOLS/zizmor" --offline --no-progress --min-severity medium .github

check "project checks (tests/infra/workflow_checks.py)" \
    "$TOOLS/python" tests/infra/workflow_checks.py --root "$ROOT"

if [ "${#CHECKS_FAILED[@]}" -gt 0 ]; then
    printf '\nworkflow checks FAILED: %s\n' "${CHECKS_FAILED[*]}" >&2
    exit 1
fi
printf '\nworkflow checks passed: actionlint, shellcheck, yamllint, zizmor, project checks\n' >&2
