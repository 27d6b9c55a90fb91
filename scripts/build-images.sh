#!/usr/bin/env bash
# Builds the two Cloud Run function images without a Docker engine or a registry: `make image`.
#   target/images/rrstitch-ingest.tar     docker-archive (podman load, skopeo copy, docker load)
#   target/images/rrstitch-finalize.tar
# 1. the release binaries (`cargo build --release --locked`; a no-op when they are up to date);
# 2. per function, a root filesystem staged under target/images/rootfs/<bin>/: the binary with
#    its debug info stripped, exactly the shared libraries `ldd` lists for it and the dynamic
#    loader, the CA bundle, /etc/passwd and /etc/group with the unprivileged user 65532, /tmp;
# 3. buildah builds infra/docker/runtime.Dockerfile (FROM scratch) on that directory, in a
#    throwaway vfs store, with chroot isolation and --pull=never, and writes the archive.
# Needs buildah (scripts/install-image-tools.sh installs it). Environment:
#   RRSTITCH_IMAGES_DIR   where the archives go (default target/images)
#   RRSTITCH_IMAGE_BINS   which functions (default "rrstitch-ingest rrstitch-finalize")
#   SOURCE_DATE_EPOCH     the images' creation and file times (default: the last commit's
#                         time), so the same binaries give the same layer digest
#   CARGO                 the cargo to build with (default cargo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${RRSTITCH_IMAGES_DIR:-$root/target/images}
read -r -a bins <<<"${RRSTITCH_IMAGE_BINS:-rrstitch-ingest rrstitch-finalize}"
cargo=${CARGO:-cargo}
release="$root/target/release"

fail() { echo "build-images: $*" >&2; exit 1; }
say() { echo "build-images: $*" >&2; }

command -v buildah >/dev/null || fail "buildah is missing: run scripts/install-image-tools.sh (Debian's buildah)"
command -v ldd >/dev/null || fail "ldd is missing (Debian package libc-bin)"
command -v objcopy >/dev/null || fail "objcopy is missing (Debian package binutils)"
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || fail "$ca is missing (Debian package ca-certificates)"

t0=$(date +%s)
packages=()
for bin in "${bins[@]}"; do packages+=(-p "$bin"); done
"$cargo" build --release --locked "${packages[@]}" || fail "cargo build --release failed"
t1=$(date +%s)

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)

# A store of our own, thrown away afterwards: no image is read from or left in the machine's
# container storage, and no base image is ever pulled. (containers/image still keeps its
# small blob-info cache in /var/lib/containers/cache, as podman and skopeo do.)
mkdir -p "$out"
store=$(mktemp -d "$out/.store.XXXXXX")
trap 'rm -rf "$store"' EXIT
# No registry is involved: a REGISTRY_AUTH_FILE set for the push (deploy-gcp.sh) must not
# make buildah fail when it does not exist yet.
bah() {
  env -u REGISTRY_AUTH_FILE buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"
}

# Copies a file to the same path under the root filesystem, following symlinks (the loader
# finds libraries by the path ldd resolved, so the copy is a regular file there).
put() {
  local src=$1 dest=$2$1
  mkdir -p "$(dirname "$dest")"
  cp -L --preserve=mode "$src" "$dest"
}

stage() {
  local bin=$1 rootfs=$2 exe="$release/$1"
  [ -x "$exe" ] || fail "$exe was not built"
  rm -rf "$rootfs"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
  chmod 0755 "$rootfs" "$rootfs/usr" "$rootfs/usr/local" "$rootfs/usr/local/bin" "$rootfs/etc"
  chmod 1777 "$rootfs/tmp"
  # Debug info off, symbols kept: a panic's backtrace still names its functions.
  objcopy --strip-debug "$exe" "$rootfs/usr/local/bin/rrstitch-function"
  chmod 0755 "$rootfs/usr/local/bin/rrstitch-function"

  # Exactly what ldd lists: "name => /path (addr)", "/path/to/loader (addr)"; the vDSO has
  # no file. A library ldd cannot find is a build failure, not an image that cannot start.
  local deps
  deps=$(ldd "$exe") || fail "ldd $exe failed: is it a dynamically linked ELF for this machine?"
  if grep -q 'not found' <<<"$deps"; then
    fail "ldd $exe: $(grep 'not found' <<<"$deps" | tr -s ' \t' ' ')"
  fi
  local libs
  libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$deps" | sort -u)
  [ -n "$libs" ] || fail "ldd $exe lists no libraries: expected glibc and its loader"
  local lib
  for lib in $libs; do
    put "$lib" "$rootfs"
    # strip-debug only: Debian's libraries carry no debug info, and their symbols are needed.
    chmod 0755 "$rootfs$lib"
  done

  cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
  # glibc's resolver: /etc/hosts first, then DNS (Cloud Run's metadata server is a name).
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
  find "$rootfs" -type d -exec chmod 0755 {} +
  chmod 1777 "$rootfs/tmp"
  say "$bin: $(tr '\n' ' ' <<<"$libs")+ ca-certificates, passwd, group, nsswitch.conf, /tmp"
}

for bin in "${bins[@]}"; do
  rootfs="$out/rootfs/$bin"
  stage "$bin" "$rootfs"
  bah bud --quiet --isolation chroot --pull=never --format docker --timestamp "$epoch" \
    --label "org.opencontainers.image.title=$bin" \
    --label "org.opencontainers.image.revision=$revision" \
    -f "$root/infra/docker/runtime.Dockerfile" -t "localhost/$bin:latest" "$rootfs" >/dev/null \
    || fail "buildah bud failed for $bin"
  rm -f "$out/$bin.tar"
  bah push --quiet "localhost/$bin:latest" "docker-archive:$out/$bin.tar:$bin:latest" \
    || fail "buildah push to $out/$bin.tar failed"
  size=$(stat -c %s "$out/$bin.tar")
  say "$bin: $out/$bin.tar ($((size / 1024 / 1024)) MB uncompressed)"
done
t2=$(date +%s)
say "done: release build $((t1 - t0)) s, images $((t2 - t1)) s"
