#!/usr/bin/env bash
# Deploys infra/gcp/example: the Artifact Registry repository first, then both function images
# built and pushed there, then everything else.
#   GCP_TFVARS     a .tfvars file (default infra/gcp/example/terraform.tfvars; copy
#                  terraform.tfvars.example). Its ingest_image/finalize_image are overridden
#                  with the images this script pushes, tagged TAG (default: the git commit).
#   IMAGE_BUILDER  how the images are built and pushed:
#                  buildah  scripts/build-images.sh (buildah, no Docker engine) writes
#                           target/images/<bin>.tar, skopeo pushes them;
#                  docker   infra/docker/Dockerfile, docker build and docker push.
#                  Default: docker when a Docker engine answers (`docker info`), else buildah
#                  (a docker CLI without an engine, as on this project's machines, is not one).
# Credentials: gcloud auth application-default login (terraform); for the push, buildah mode
# logs skopeo in with `gcloud auth print-access-token`, docker mode needs
# gcloud auth configure-docker REGION-docker.pkg.dev.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/infra/gcp/example"
tfvars=${GCP_TFVARS:-$dir/terraform.tfvars}
tag=${TAG:-$(git -C "$root" rev-parse --short HEAD)}
bins=(rrstitch-ingest rrstitch-finalize)
fail() { echo "deploy-gcp: $*" >&2; exit 1; }

builder=${IMAGE_BUILDER:-}
if [ -z "$builder" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    builder=docker
  else
    builder=buildah
  fi
fi

command -v terraform >/dev/null || fail "terraform is required (>= 1.5)"
case "$builder" in
  docker)
    docker info >/dev/null 2>&1 || fail "IMAGE_BUILDER=docker but no Docker engine answers (docker info)" ;;
  buildah)
    for tool in buildah skopeo; do
      command -v "$tool" >/dev/null \
        || fail "$tool is required to build and push without Docker: run scripts/install-image-tools.sh"
    done
    command -v gcloud >/dev/null || fail "gcloud is required (skopeo logs in with its access token)" ;;
  *) fail "IMAGE_BUILDER must be docker or buildah, not '$builder'" ;;
esac
[ -f "$tfvars" ] || fail "no variables file at $tfvars (copy $dir/terraform.tfvars.example)"
tfvars="$(cd "$(dirname "$tfvars")" && pwd)/$(basename "$tfvars")"

# Build before touching the cloud: a build that fails leaves nothing half-deployed.
if [ "$builder" = buildah ]; then
  bash "$root/scripts/build-images.sh"
  for bin in "${bins[@]}"; do
    platform=$(skopeo inspect --format '{{.Os}}/{{.Architecture}}' "docker-archive:$root/target/images/$bin.tar")
    [ "$platform" = linux/amd64 ] || fail "$bin.tar is a $platform image: Cloud Run runs linux/amd64 only"
  done
fi

terraform -chdir="$dir" init -input=false
# The services need images and the images need the repository: create it alone first.
terraform -chdir="$dir" apply -input=false -var-file="$tfvars" \
  -target=module.rrstitch.google_artifact_registry_repository.images
repo=$(terraform -chdir="$dir" output -raw image_repository)
registry=${repo%%/*}   # REGION-docker.pkg.dev

if [ "$builder" = buildah ]; then
  gcloud auth print-access-token \
    | skopeo login --username oauth2accesstoken --password-stdin "$registry" \
    || fail "skopeo could not log in to $registry with gcloud's access token (gcloud auth login?)"
  for bin in "${bins[@]}"; do
    skopeo copy --retry-times 3 "docker-archive:$root/target/images/$bin.tar" "docker://$repo/$bin:$tag"
  done
else
  for bin in "${bins[@]}"; do
    docker build -f "$root/infra/docker/Dockerfile" --build-arg "BIN=$bin" -t "$repo/$bin:$tag" "$root"
    docker push "$repo/$bin:$tag"
  done
fi

terraform -chdir="$dir" apply -input=false -var-file="$tfvars" \
  -var "ingest_image=$repo/rrstitch-ingest:$tag" \
  -var "finalize_image=$repo/rrstitch-finalize:$tag"
terraform -chdir="$dir" output
