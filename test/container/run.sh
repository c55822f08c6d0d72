#!/usr/bin/env bash
# npm run test:container: builds the Dockerfile and checks the image (test/container/image.check.ts).
# Containers cannot start everywhere (a sandboxed CI refuses their setrlimit), so the image's unpacked
# filesystem runs under chroot with the image's user, environment, working directory and entrypoint.
# Needs root (chroot, mounts) and podman (preferred; `podman build --isolation=chroot` needs no daemon)
# or a running Docker. When the registry's base image cannot be pulled, a stand-in is made
# (test/container/make-stand-in-node-image.sh) and the run says so.
# Exit 3: cannot run on this machine (no engine, not root, no base image); anything else non-zero: failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=localhost/connect-chat-gateway:container-check
base=$(sed -nE 's/^FROM ([^ ]+).*/\1/p' Dockerfile | head -n 1)

if command -v podman >/dev/null; then
  engine=podman; build=(podman build --isolation=chroot)
elif docker info >/dev/null 2>&1; then
  engine=docker; build=(docker build)
else
  echo "test:container needs podman (apt-get install -y podman) or a running Docker" >&2; exit 3
fi
[ "$(id -u)" = 0 ] || { echo "test:container needs root (chroot and mounts)" >&2; exit 3; }

if ! "$engine" image inspect "$base" >/dev/null 2>&1; then
  if ! timeout 120 "$engine" pull -q "docker.io/library/$base" >/dev/null 2>&1; then
    echo "the registry's $base cannot be pulled here: building a STAND-IN base"
    test/container/make-stand-in-node-image.sh "$base" || { echo "could not make the stand-in base" >&2; exit 3; }
  fi
fi
if "$engine" image inspect "$base" --format '{{json .Config.Labels}}' | grep -q STAND-IN; then
  echo "base $base is a STAND-IN (Debian + Node from the npm registry), not the registry's image"
fi

started=$(date +%s)
log=$(mktemp)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
"${build[@]}" --build-arg "SOURCE_COMMIT=$commit" -t "$image" . >"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
echo "built $image in $(( $(date +%s) - started )) s"

ctr=$("$engine" create "$image")
root=""
cleanup () {
  if [ -n "$root" ]; then umount "$root/proc" 2>/dev/null || true; umount "$root/dev" 2>/dev/null || true; fi
  if [ "$engine" = podman ]; then podman umount "$ctr" >/dev/null 2>&1 || true; elif [ -n "$root" ]; then rm -rf "$root"; fi
  "$engine" rm -f "$ctr" >/dev/null 2>&1 || true
  rm -f "$log"
  # Each build leaves the previous image and its stages untagged; a day's worth stays as build cache.
  "$engine" image prune -f --filter until=24h >/dev/null 2>&1 || true
}
trap cleanup EXIT
# A container's writable filesystem, so that a refused write shows the image's ownership, not a
# read-only mount.
if [ "$engine" = podman ]; then
  root=$(podman mount "$ctr")
else
  root=$(mktemp -d /var/tmp/container-check.XXXXXX)
  docker export "$ctr" | tar -x -C "$root"
fi
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"

CONTAINER_ROOT=$root \
CONTAINER_COMMIT=$commit \
CONTAINER_CONFIG=$("$engine" image inspect "$image" --format '{{json .Config}}') \
CONTAINER_IMAGE_BYTES=$("$engine" image inspect "$image" --format '{{.Size}}') \
CONTAINER_BASE_BYTES=$("$engine" image inspect "$base" --format '{{.Size}}') \
  npx tap --disable-coverage --allow-incomplete-coverage test/container/image.check.ts
