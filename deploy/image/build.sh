#!/usr/bin/env bash
# Builds the gateway's container image here, without a registry: creates the
# local stand-ins for the base images when they are missing (bases.sh), then
# builds the Dockerfile at the repository root with buildah.
#
#   deploy/image/build.sh [NAME]          default NAME: localhost/switchyard-gateway:dev
#   npm run build:image -- [NAME]
#
# As root, with buildah and debootstrap installed (apt-get install buildah debootstrap).
# STORAGE_DRIVER (default vfs) is passed to every buildah command; use the same
# with `buildah --storage-driver vfs from NAME` to run the result.
# The image is written in Docker format: the OCI format has no HEALTHCHECK.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:-localhost/switchyard-gateway:dev}
driver=${STORAGE_DRIVER:-vfs}

deploy/image/bases.sh
started=$(date +%s)
before=$(buildah --storage-driver "$driver" containers --quiet --all | sort)
if ! buildah --storage-driver "$driver" bud --isolation chroot --pull=never --format docker \
  --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$name" .; then
  # A failed build leaves its working containers (--force-rm needs --layers); remove the ones it made.
  comm -13 <(echo "$before") <(buildah --storage-driver "$driver" containers --quiet --all | sort) \
    | xargs -r buildah --storage-driver "$driver" rm >/dev/null || true
  exit 1
fi
echo "build.sh: built $name in $(($(date +%s) - started)) s"
