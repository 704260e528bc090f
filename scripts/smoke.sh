#!/usr/bin/env bash
# Smoke-test a running deployment through its public URL.
#
#   SMOKE_API_KEY=<key> scripts/smoke.sh <base-url>
#
# 1. GET $SMOKE_HEALTH_PATH (default /healthz) answers 200, retried while the
#    edge and pods settle; every path in $SMOKE_UNPUBLISHED_PATHS must answer
#    404: no route at this address (the operator routes are only on the
#    internal Gateway);
# 2. POST /api/v1/jobs submits a `text-stats` job ("hello world");
# 3. GET /api/v1/jobs/{id} is polled until the job has `succeeded`;
# 4. GET /api/v1/jobs/{id}/result answers 200 with a body.
#
# Environment:
#   SMOKE_API_KEY       API key of a tenant (Authorization: Bearer); required.
#   SMOKE_HEALTH_PATH   liveness path to wait for (default /healthz).
#   SMOKE_UNPUBLISHED_PATHS  space-separated paths that must answer 404 (default
#                       none; CI checks the operator routes on the public edge).
#   SMOKE_TIMEOUT       seconds to wait for /healthz and for the job (default 180 each).
#   SMOKE_CURL_TIMEOUT  seconds per HTTP request (default 10).
#   SMOKE_INSECURE=1    accept a self-signed certificate (dev clusters without a CA-issued one).
set -euo pipefail

die() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
say() { printf 'smoke: %s\n' "$*" >&2; }

[ "$#" -eq 1 ] || { printf 'usage: SMOKE_API_KEY=<key> %s <base-url>\n' "$0" >&2; exit 2; }
base="${1%/}"
[ -n "${SMOKE_API_KEY:-}" ] || die "SMOKE_API_KEY is not set"
timeout="${SMOKE_TIMEOUT:-180}"
curl_opts=(--silent --show-error --max-time "${SMOKE_CURL_TIMEOUT:-10}" --proto '=https,http')
[ "${SMOKE_INSECURE:-0}" = 1 ] && curl_opts+=(--insecure)

body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# HTTP status of a request, the response body in $body. "000" when no response.
http() {
    local code
    code="$(curl "${curl_opts[@]}" --output "$body" --write-out '%{http_code}' "$@" 2>/dev/null)" || true
    printf '%s\n' "${code:-000}"
}

# A field of the JSON object in $body (empty when absent or not JSON).
json_field() {
    python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except Exception:
    v = ""
print(v if isinstance(v, str) else json.dumps(v))' "$body" "$1"
}

auth=(--header "Authorization: Bearer $SMOKE_API_KEY")

health="${SMOKE_HEALTH_PATH:-/healthz}"
say "GET $base$health"
deadline=$((SECONDS + timeout))
until [ "$(http "$base$health")" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "$health did not answer 200 within ${timeout}s"
    sleep 5
done
say "$health 200"

for path in ${SMOKE_UNPUBLISHED_PATHS:-}; do
    code="$(http "$base$path")"
    case "$code" in
        404) say "$path not published (404)" ;;
        *) die "$path answered $code: it must not be routed at $base (expected 404)" ;;
    esac
done

say "POST $base/api/v1/jobs (text-stats)"
code="$(http "${auth[@]}" --header 'Content-Type: application/json' \
    --header "Idempotency-Key: smoke-$(date +%s)-$$" \
    --data '{"type":"text-stats","input":{"text":"hello world"}}' "$base/api/v1/jobs")"
[ "$code" = 202 ] || die "POST /api/v1/jobs answered $code: $(head -c 500 "$body")"
id="$(json_field id)"
[ -n "$id" ] || die "POST /api/v1/jobs answered 202 without a job id: $(head -c 500 "$body")"
say "job $id accepted"

deadline=$((SECONDS + timeout))
while :; do
    code="$(http "${auth[@]}" "$base/api/v1/jobs/$id")"
    status=""
    [ "$code" = 200 ] && status="$(json_field status)"
    case "$status" in
        succeeded) break ;;
        failed) die "job $id failed: $(head -c 500 "$body")" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || die "job $id not succeeded within ${timeout}s (last: HTTP $code, status ${status:-none})"
    sleep 2
done
say "job $id succeeded"

code="$(http "${auth[@]}" "$base/api/v1/jobs/$id/result")"
[ "$code" = 200 ] || die "GET /api/v1/jobs/$id/result answered $code: $(head -c 500 "$body")"
[ -s "$body" ] || die "GET /api/v1/jobs/$id/result answered 200 with an empty body"
say "result: $(head -c 300 "$body")"
say "PASS"
