#!/usr/bin/env bash
# Installs the tools that build, run and push the function images without a Docker engine,
# from Debian's packages (needs root, as on the project's machines and CI):
#   buildah  builds the images (scripts/build-images.sh): vfs storage, chroot isolation
#   podman   runs them in tests/tests/images.rs, with runc (crun fails on hybrid cgroups here)
#   skopeo   pushes the archives to Artifact Registry (scripts/deploy-gcp.sh)
#   umoci, uidmap, fuse-overlayfs, ca-certificates: what those lean on
# Idempotent: when every tool is already there it only checks, and runs no apt at all.
# Fails loudly, naming what is missing; never skips.
set -euo pipefail

fail() { echo "install-image-tools: $*" >&2; exit 1; }

packages=(buildah podman runc umoci skopeo uidmap fuse-overlayfs ca-certificates)
# Installed means dpkg says so and, for the tools, the command is on PATH (a half-removed
# package has neither).
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
for c in buildah podman runc skopeo umoci; do
  command -v "$c" >/dev/null || missing+=("$c")
done

if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || fail "apt-get not found: install ${missing[*]} with this system's package manager"
  [ "$(id -u)" -eq 0 ] || fail "root is needed to apt-get install: ${missing[*]} (run as root or with sudo)"
  echo "install-image-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed (is a Debian mirror reachable?)"
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
    || fail "apt-get install failed for: ${packages[*]}"
fi

for c in buildah podman runc skopeo umoci; do
  command -v "$c" >/dev/null || fail "$c is still missing after installing ${packages[*]}"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || fail "/etc/ssl/certs/ca-certificates.crt is missing (package ca-certificates)"
for c in objcopy readelf; do
  # build-images.sh strips debug info with objcopy; tests/tests/images.rs checks with readelf.
  command -v "$c" >/dev/null || fail "$c is missing (Debian package binutils)"
done

echo "image tools ready:"
for c in buildah podman runc skopeo umoci; do
  printf '  %-8s %s\n' "$c" "$("$c" --version 2>/dev/null | head -1)"
done
