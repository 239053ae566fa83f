#!/usr/bin/env bash
# Build the pimbot image with podman (no Docker daemon needed) and smoke-test it.
#
#   tools/build_image.sh [TAG]          # default TAG: localhost/pimbot:dev
#
# What the smoke test checks, on a throwaway /data volume: the processes run as uid 10001;
# `pimbot --help` works; a worker replica (PIMBOT_ADAPTERS=none, SQLite in /data) answers
# /healthz and /readyz; the image's HEALTHCHECK passes; `pimbot audit verify` passes inside
# it; SIGTERM stops it with exit code 0; the console reads a script from a pipe.
#
# Environment:
#   PYTHON_IMAGE  base image (Dockerfile ARG). Unset: python:3.11-slim-bookworm if it can be
#                 pulled, else a Debian bookworm root file system with python3.11 and venv,
#                 made with debootstrap and apt, imported as localhost/pimbot-base:py311-bookworm
#                 (a stand-in for a machine that reaches Debian's packages but no image
#                 registry; production builds use the official image or a mirror of it).
#   PIP_CA        CA bundle pip trusts inside the build (a TLS-inspecting proxy); default
#                 the host's /etc/ssl/certs/ca-certificates.crt when it exists.
#   PODMAN        the podman command, default "podman --runtime runc" when runc is installed
#                 (crun refuses hybrid cgroup v1/v2 hosts), else "podman".
#   SMOKE_PORT    the port the smoke test listens on (host network), default 3917.
set -euo pipefail

TAG="${1:-localhost/pimbot:dev}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OFFICIAL="python:3.11-slim-bookworm"
STANDIN="localhost/pimbot-base:py311-bookworm"
PORT="${SMOKE_PORT:-3917}"
if [[ -z "${PODMAN:-}" ]]; then
  if command -v runc >/dev/null; then PODMAN="podman --runtime runc"; else PODMAN="podman"; fi
fi
read -r -a POD <<<"$PODMAN"
# the sandbox's hard limits are below podman's defaults, which it may not raise
LIMITS=(--ulimit "nofile=4096:4096" --ulimit "nproc=4096:4096")
WORK="$(mktemp -d)"
NAME="pimbot-smoke-$$"
VOLUME="pimbot-smoke-$$"

cleanup() {
  "${POD[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
  "${POD[@]}" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '== %s\n' "$*" >&2; }

standin_base() {
  if "${POD[@]}" image exists "$STANDIN"; then return; fi
  say "building $STANDIN with debootstrap (bookworm, python3.11, venv)"
  local fs="$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$fs" >"$WORK/debootstrap.log" 2>&1 \
    || { cat "$WORK/debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$fs/etc/resolv.conf"
  chroot "$fs" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends python3-venv ca-certificates >/dev/null'
  chroot "$fs" python3.11 -m venv /tmp/check-venv
  rm -rf "$fs/tmp/check-venv" "$fs/var/lib/apt/lists/"* "$fs/var/cache/apt/"*
  : >"$fs/etc/resolv.conf"
  ln -sf python3.11 "$fs/usr/bin/python"   # as the official image has it
  ln -sf python3.11 "$fs/usr/bin/python3"
  tar -C "$fs" -c . | "${POD[@]}" import --change 'CMD ["/bin/bash"]' - "$STANDIN" >/dev/null
}

if [[ -z "${PYTHON_IMAGE:-}" ]]; then
  if timeout 120 "${POD[@]}" pull -q "docker.io/library/$OFFICIAL" >/dev/null 2>&1; then
    PYTHON_IMAGE="docker.io/library/$OFFICIAL"
  else
    say "$OFFICIAL cannot be pulled: using a Debian stand-in"
    standin_base
    PYTHON_IMAGE="$STANDIN"
  fi
fi

BUILD=(build --format docker --isolation=chroot --network=host
       --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$TAG")
CA="${PIP_CA:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -f "$CA" ]]; then
  printf '[global]\ncert = /etc/ssl/certs/build-ca.crt\n' >"$WORK/pip.conf"
  BUILD+=(-v "$CA:/etc/ssl/certs/build-ca.crt:ro" -v "$WORK/pip.conf:/etc/pip.conf:ro")
fi
say "podman ${BUILD[*]} $ROOT"
"${POD[@]}" "${BUILD[@]}" "$ROOT"

say "smoke test: user, --help"
uid="$("${POD[@]}" run --rm "${LIMITS[@]}" --no-healthcheck "$TAG" id -u)"
[[ "$uid" == "10001" ]] || { say "runs as uid $uid, not 10001"; exit 1; }
"${POD[@]}" run --rm "${LIMITS[@]}" --no-healthcheck "$TAG" pimbot --help >/dev/null

say "smoke test: a worker replica on 127.0.0.1:$PORT, SQLite in a /data volume"
"${POD[@]}" volume create "$VOLUME" >/dev/null
"${POD[@]}" run -d --name "$NAME" "${LIMITS[@]}" --network=host -v "$VOLUME:/data" \
  -e PIMBOT_ADAPTERS=none -e PIMBOT_HOST=127.0.0.1 -e "PIMBOT_PORT=$PORT" "$TAG" >/dev/null
ready=""
for _ in $(seq 60); do
  if ready="$(curl -fsS "http://127.0.0.1:$PORT/readyz" 2>/dev/null)"; then break; fi
  sleep 1
done
[[ -n "$ready" ]] || { "${POD[@]}" logs "$NAME" >&2; say "/readyz never answered"; exit 1; }
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null
"${POD[@]}" healthcheck run "$NAME"
"${POD[@]}" exec "$NAME" pimbot audit verify >/dev/null
"${POD[@]}" stop -t 30 "$NAME" >/dev/null
code="$("${POD[@]}" inspect "$NAME" --format '{{.State.ExitCode}}')"
[[ "$code" == "0" ]] || { "${POD[@]}" logs "$NAME" >&2; say "exit code $code on SIGTERM"; exit 1; }

say "smoke test: the console from a pipe"
out="$(printf 'as bob@example.com\nactivate staging-deploy for 30m reason smoke\nstatus\n' \
  | "${POD[@]}" run --rm -i "${LIMITS[@]}" --no-healthcheck -v "$VOLUME:/data" "$TAG")"
grep -q "staging-deploy: active" <<<"$out" || { printf '%s\n' "$out" >&2; exit 1; }

say "ok: $TAG ($ready)"
