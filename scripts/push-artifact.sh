#!/usr/bin/env bash
# Push the built Spin application (spin.toml and the components it names) to an
# OCI registry and print the reference to deploy, pinned by digest.
#
#   scripts/push-artifact.sh [--insecure] <registry>/<repository>:<tag> [<tag>...]
#
# `spin registry push` once per tag: first <registry>/<repository>:<tag>, then
# the same repository with every further tag. Prints one line on stdout,
# <registry>/<repository>@sha256:<digest>, the form scripts/deploy.sh <env>
# takes; Spin's own output goes to stderr. Fails when Spin does not report a
# digest, or when the tags do not all name the same manifest.
#
# The deploy workflow runs this through `scripts/deploy.sh push` (ACR, after
# signing in); scripts/check-artifact.sh runs it against a local registry.
# Build first (scripts/build.sh or `spin build`): the push uploads the files
# spin.toml names as sources, it does not build them.
#
# Environment:
#   SPIN             the Spin CLI (default: find_spin in scripts/lib.sh)
#   ARTIFACT_CREATED the org.opencontainers.image.created annotation (default:
#                    the commit time of HEAD, else now). Spin would stamp each
#                    push with the current time, so two tags of one build would
#                    name two manifests; a fixed value keeps them one.
#   ARTIFACT_EXPECT_DIGEST  when set, fail unless the push got this digest
#                    (CI: the digest scripts/check-artifact.sh checked and ran;
#                    the same build pushed with the same created annotation is
#                    the same manifest in any registry).
#   --insecure       plain HTTP, for a registry on loopback only
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

insecure=()
if [ "${1:-}" = --insecure ]; then
    insecure=(--insecure)
    shift
fi
[ "$#" -ge 1 ] || die "usage: $0 [--insecure] <registry>/<repository>:<tag> [<tag>...]"

first="$1"
shift
# <registry>/<repository>:<tag>; the registry may carry a port, so split at the last colon after the last slash.
repo="${first%:*}"
tag="${first##*:}"
[[ "$repo" == */* ]] || die "not a <registry>/<repository>:<tag> reference: $first"
tags=("$tag" "$@")
for tag in "${tags[@]}"; do
    [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a tag: $tag (in $first $*)"
done

spin="${SPIN:-$(find_spin)}"
[ -n "$spin" ] || die "the Spin CLI is required (spin on PATH)"

created="${ARTIFACT_CREATED:-$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || true)}"
created="${created:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

digest=""
for tag in "${tags[@]}"; do
    ref="$repo:$tag"
    step "spin registry push $ref"
    out="$("$spin" registry push "${insecure[@]}" --annotation "org.opencontainers.image.created=$created" "$ref")" ||
        die "spin registry push $ref failed"
    printf '%s\n' "$out" >&2
    # Spin 3.6 prints "Pushed with digest sha256:<hex>", the digest from the
    # registry's Location header for the manifest; without one it prints
    # "Pushed; the registry did not return the digest".
    pushed="$(printf '%s\n' "$out" | sed -n 's/^Pushed with digest \(sha256:[0-9a-f]\{64\}\)$/\1/p' | head -n 1)"
    [ -n "$pushed" ] ||
        die "spin registry push $ref reported no digest; the deploy step pins the image by digest (Spin said: ${out:-nothing})"
    if [ -z "$digest" ]; then
        digest="$pushed"
    elif [ "$pushed" != "$digest" ]; then
        die "$ref is $pushed but ${repo}:${tags[0]} is $digest: the tags name different manifests"
    fi
done

if [ -n "${ARTIFACT_EXPECT_DIGEST:-}" ] && [ "$digest" != "$ARTIFACT_EXPECT_DIGEST" ]; then
    die "$repo got $digest, but the artifact that was checked and run (scripts/check-artifact.sh) is $ARTIFACT_EXPECT_DIGEST: not deploying an untested artifact"
fi
printf '%s@%s\n' "$repo" "$digest"
