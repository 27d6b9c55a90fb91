#!/usr/bin/env bash
# Deploys infra/aws with the packages from scripts/package-lambda.sh.
#   AWS_TFVARS   a .tfvars file (default infra/aws/terraform.tfvars): chunk_bucket_name,
#                results_bucket_name and any other variable of infra/aws/variables.tf.
# AWS credentials come from the usual places (AWS_PROFILE, environment, SSO).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tfvars=${AWS_TFVARS:-$root/infra/aws/terraform.tfvars}
fail() { echo "deploy-aws: $*" >&2; exit 1; }

command -v terraform >/dev/null || fail "terraform is required (>= 1.5)"
[ -f "$tfvars" ] || fail "no variables file at $tfvars (copy infra/aws/terraform.tfvars.example)"
for zip in rrstitch-ingest rrstitch-finalize; do
  [ -f "$root/target/lambda/$zip/bootstrap.zip" ] || fail "target/lambda/$zip/bootstrap.zip is missing: run make package"
done
terraform -chdir="$root/infra/aws" init -input=false
terraform -chdir="$root/infra/aws" apply -input=false \
  -var-file="$(cd "$(dirname "$tfvars")" && pwd)/$(basename "$tfvars")" \
  -var "ingest_zip=$root/target/lambda/rrstitch-ingest/bootstrap.zip" \
  -var "finalize_zip=$root/target/lambda/rrstitch-finalize/bootstrap.zip"
terraform -chdir="$root/infra/aws" output
