#!/usr/bin/env bash
# Deploys infra/gcp/example: the Artifact Registry repository first, then both images built
# from infra/docker/Dockerfile and pushed there, then everything else.
#   GCP_TFVARS   a .tfvars file (default infra/gcp/example/terraform.tfvars; copy
#                terraform.tfvars.example). Its ingest_image/finalize_image are overridden
#                with the images this script pushes, tagged TAG (default: the git commit).
# Credentials: gcloud auth application-default login (terraform) and
# gcloud auth configure-docker REGION-docker.pkg.dev (docker push).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/infra/gcp/example"
tfvars=${GCP_TFVARS:-$dir/terraform.tfvars}
tag=${TAG:-$(git -C "$root" rev-parse --short HEAD)}
fail() { echo "deploy-gcp: $*" >&2; exit 1; }

command -v terraform >/dev/null || fail "terraform is required (>= 1.5)"
command -v docker >/dev/null || fail "docker (with BuildKit) is required to build the images"
[ -f "$tfvars" ] || fail "no variables file at $tfvars (copy $dir/terraform.tfvars.example)"
tfvars="$(cd "$(dirname "$tfvars")" && pwd)/$(basename "$tfvars")"

terraform -chdir="$dir" init -input=false
# The services need images and the images need the repository: create it alone first.
terraform -chdir="$dir" apply -input=false -var-file="$tfvars" \
  -target=module.rrstitch.google_artifact_registry_repository.images
repo=$(terraform -chdir="$dir" output -raw image_repository)
for bin in rrstitch-ingest rrstitch-finalize; do
  docker build -f "$root/infra/docker/Dockerfile" --build-arg "BIN=$bin" -t "$repo/$bin:$tag" "$root"
  docker push "$repo/$bin:$tag"
done
terraform -chdir="$dir" apply -input=false -var-file="$tfvars" \
  -var "ingest_image=$repo/rrstitch-ingest:$tag" \
  -var "finalize_image=$repo/rrstitch-finalize:$tag"
terraform -chdir="$dir" output
