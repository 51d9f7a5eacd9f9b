#!/usr/bin/env bash
# Local stand-ins for the two base images the Dockerfile names, for machines
# that cannot pull from an image registry (as root, with buildah and debootstrap):
#
#   docker.io/library/node:24-bookworm-slim   Debian bookworm minbase (debootstrap) + this
#                                              machine's Node 24 binary and npm, in
#                                              /usr/local as in the official image
#   gcr.io/distroless/cc-debian12:nonroot      only what distroless/cc holds and Node needs:
#                                              glibc, libgcc, libstdc++, tzdata, os-release,
#                                              CA certificates, /etc/passwd with nonroot (65532),
#                                              /tmp; no shell, no package manager
#
# An image that already exists under either name (a real one pulled earlier,
# or a stand-in from an earlier run) is left alone. Stand-ins carry the label
# org.switchyard.stand-in=true; remove them with `buildah rmi NAME`.
#
#   deploy/image/bases.sh
#
# Environment: STORAGE_DRIVER (default vfs), DEBIAN_MIRROR (default: the first
# Debian URI in /etc/apt/sources.list*), NODE_BIN (default: the node on PATH;
# must be Node 24), NPM_DIR (default: the npm package the npm on PATH runs),
# EXTRA_CA_CERTS (default: $NODE_EXTRA_CA_CERTS): a CA bundle the node stand-in
# trusts too, as NODE_EXTRA_CA_CERTS in its environment, for a machine that
# reaches the npm registry through a TLS-intercepting proxy (npm ci in the
# build stage fails with SELF_SIGNED_CERT_IN_CHAIN otherwise).
set -euo pipefail

NODE_IMAGE=docker.io/library/node:24-bookworm-slim
RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
driver=${STORAGE_DRIVER:-vfs}
bah() { buildah --storage-driver "$driver" "$@"; }
have() { bah inspect --type image "$1" >/dev/null 2>&1; }

if have "$NODE_IMAGE" && have "$RUNTIME_IMAGE"; then
  echo "bases: $NODE_IMAGE and $RUNTIME_IMAGE exist"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "bases: run as root (debootstrap, buildah mount)" >&2; exit 1; }
for tool in buildah debootstrap dpkg-query tar; do
  command -v "$tool" >/dev/null || { echo "bases: $tool is missing (apt-get install buildah debootstrap)" >&2; exit 1; }
done

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 (.sources: "URIs: ...") and one-line ("deb URI suite ...") formats; not the security archive.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
    | tr ' ' '\n' | grep -v -e security -e '^$' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
node_bin=$(readlink -f "${NODE_BIN:-$(command -v node)}")
node_version=$("$node_bin" -v)
case "$node_version" in v24.*) ;; *) echo "bases: $node_bin is Node $node_version; Node 24 is needed (set NODE_BIN)" >&2; exit 1 ;; esac
npm_dir=${NPM_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")}
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "bases: no npm at $npm_dir (set NPM_DIR)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/switchyard-bases.XXXXXX)
ctrs=()
cleanup() {
  for c in "${ctrs[@]}"; do bah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/bookworm

echo "bases: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

if ! have "$NODE_IMAGE"; then
  ctr=$(bah from scratch); ctrs+=("$ctr")
  mnt=$(bah mount "$ctr")
  cp -a "$root"/. "$mnt"/
  install -D -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  ca=()
  extra_ca=${EXTRA_CA_CERTS:-${NODE_EXTRA_CA_CERTS:-}}
  if [ -n "$extra_ca" ] && [ -f "$extra_ca" ]; then
    install -D -m 0644 "$extra_ca" "$mnt/usr/local/share/ca-certificates/extra-ca.crt"
    ca=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt)
  fi
  bah umount "$ctr" >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env "NODE_VERSION=${node_version#v}" "${ca[@]}" \
    --cmd node --label org.switchyard.stand-in=true "$ctr"
  bah commit --quiet --format docker "$ctr" "$NODE_IMAGE" >/dev/null
  echo "bases: built $NODE_IMAGE (Node $node_version, npm $("$node_bin" "$npm_dir/bin/npm-cli.js" -v))"
fi

if ! have "$RUNTIME_IMAGE"; then
  ctr=$(bah from scratch); ctrs+=("$ctr")
  mnt=$(bah mount "$ctr")
  # Merged /usr: the top-level symlinks first, so that package paths under /lib land in /usr/lib.
  for link in bin lib lib64 sbin; do
    if [ -L "$root/$link" ]; then cp -a "$root/$link" "$mnt/$link"; mkdir -p "$mnt/$(readlink "$root/$link")"; fi
  done
  # The files (not directories) of the packages distroless/cc is made of, as far as minbase has them.
  for pkg in base-files libc6 libgcc-s1 libstdc++6 gcc-12-base tzdata; do
    dpkg-query --admindir="$root/var/lib/dpkg" -L "$pkg"
  done | sort -u | while read -r path; do
    if [ -f "$root$path" ] || [ -L "$root$path" ]; then printf '%s\n' ".$path"; fi
  done >"$work/files"
  tar -C "$root" --no-recursion -cf - -T "$work/files" | tar -C "$mnt" --keep-directory-symlink -xf -
  mkdir -p "$mnt/etc/ssl/certs" "$mnt/home/nonroot" "$mnt/root" "$mnt/tmp"
  chmod 1777 "$mnt/tmp"; chmod 0700 "$mnt/root"
  chown 65532:65532 "$mnt/home/nonroot"; chmod 0700 "$mnt/home/nonroot"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$mnt/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$mnt/etc/group"
  printf '%s\n' 'hosts: files dns' >"$mnt/etc/nsswitch.conf"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/"; fi
  bah umount "$ctr" >/dev/null
  bah config --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label org.switchyard.stand-in=true "$ctr"
  bah commit --quiet --format docker "$ctr" "$RUNTIME_IMAGE" >/dev/null
  echo "bases: built $RUNTIME_IMAGE"
fi
