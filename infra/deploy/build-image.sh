#!/usr/bin/env bash
# `make image`: build infra/deploy/Dockerfile with docker or podman, whichever is here.
#
# The Dockerfile's base is python:3.11-slim-bookworm. Where no container registry can be
# reached, the base is made from Debian's own packages instead (debootstrap, the same
# bookworm release with its python3) and imported as $LOCAL_BASE; the build then uses it
# through the BASE_IMAGE build argument. The host's CA bundle goes into that local base,
# so pip inside the build trusts what the host trusts (a proxy's CA, for instance).
set -euo pipefail
cd "$(dirname "$0")/../.."

TAG="${IMAGE_TAG:-gymledger:0.1.0}"
OFFICIAL_BASE="python:3.11-slim-bookworm"
LOCAL_BASE="localhost/gymledger-base:bookworm"
WORK="${IMAGE_WORK_DIR:-.data/image}"

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  exec docker build -f infra/deploy/Dockerfile -t "$TAG" .
fi
command -v podman >/dev/null || { echo "neither docker nor podman is installed" >&2; exit 2; }

base="$OFFICIAL_BASE"
if ! podman image exists "$base" && ! podman pull -q "$base" >/dev/null 2>&1; then
  base="$LOCAL_BASE"
  if ! podman image exists "$base"; then
    command -v debootstrap >/dev/null || { echo "no registry and no debootstrap: apt-get install debootstrap" >&2; exit 2; }
    echo "no registry reachable: making $base from Debian's packages" >&2
    rm -rf "$WORK/rootfs" && mkdir -p "$WORK"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -c . | podman import - "$base" >/dev/null
    rm -rf "$WORK/rootfs"
  fi
fi
# chroot isolation needs no user namespaces or container runtime, only root; the docker
# format keeps the HEALTHCHECK (OCI images have no field for it).
exec podman build --isolation chroot --format docker --build-arg BASE_IMAGE="$base" \
  -f infra/deploy/Dockerfile -t "$TAG" .
