#!/usr/bin/env bash
# Installs the schema-serving stand-in for the hashicorp/google provider (and google-beta)
# that tests/tests/infra_gcp_plan.rs runs `terraform init/validate/test` with, into
# .build/tf-standin/ (git-ignored). Idempotent: a second run only re-checks, and re-converts
# the schema when the resource types infra/gcp uses (or the converter) changed.
#
#   1. the stand-in's Python dependencies, into the project's venv (.build/venv): the PyPI
#      package `tf` (generated tfplugin6 code and go-plugin's services), grpcio, protobuf,
#      msgpack, cryptography;
#   2. the schema's source, PyPI's cdktf-cdktf-provider-google==16.12.1 (cdktf's binding of
#      hashicorp/google 6.50.0; a 49 MB wheel, checked against its sha256): only its
#      _jsii/provider-google@16.12.1.jsii.tgz is kept;
#   3. the schema of the types infra/gcp uses and the provider's configuration, converted
#      by scripts/tf-google-standin/convert.py into .build/tf-standin/schema.json;
#   4. a provider mirror, .build/tf-standin/mirror, in the unpacked layout:
#      registry.terraform.io/hashicorp/{google,google-beta}/6.50.0/linux_amd64/
#      terraform-provider-<name>_v6.50.0, each a script running scripts/tf-google-standin/provider.py;
#   5. a Terraform CLI configuration, .build/tf-standin/terraformrc, that installs those two
#      from the mirror and nothing from anywhere else: use it as TF_CLI_CONFIG_FILE.
#
# The mirror's hashes are the stand-in's, not the real provider's: never commit a
# .terraform.lock.hcl written with this configuration (the test works on a copy of infra/gcp).
# Fails loudly, naming what is missing; never skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/.build"
venv="$build/venv"
dir="$build/tf-standin"
src="$root/scripts/tf-google-standin"
version=6.50.0
cdktf="cdktf-cdktf-provider-google==16.12.1"
cdktf_sha256=88d021c89e1cf2abf2c935716d6548d26fe3da4bed30713d4fa36df1ef137436
want="tf==1.2.0 grpcio==1.76.0 protobuf==5.29.5 msgpack==1.1.1 cryptography>43"

fail() { echo "install-tf-standin: $*" >&2; exit 1; }

command -v terraform >/dev/null || fail "terraform is not installed (need Terraform >= 1.5 on PATH)"
mkdir -p "$dir"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  command -v "$python" >/dev/null || fail "python3 is required (the stand-in provider is Python)"
  "$python" -m venv "$venv" || fail "could not create a venv at $venv"
fi
py="$venv/bin/python"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "the stand-in needs Python >= 3.11 (the tf package does); $venv has $("$py" --version 2>&1)"

# 1. dependencies
if [ "$(cat "$dir/deps.stamp" 2>/dev/null)" != "$want" ]; then
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want \
    || fail "pip could not install: $want"
  echo "$want" > "$dir/deps.stamp"
fi
"$py" -c 'import grpc, msgpack, cryptography; from tf.gen import tfplugin_pb2, tfplugin_pb2_grpc, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc' \
  || fail "the stand-in's dependencies do not import in $venv (delete $dir/deps.stamp and run again)"

# 2. the schema's source
tgz="$dir/provider-google@16.12.1.jsii.tgz"
if [ ! -s "$tgz" ]; then
  dl=$(mktemp -d "$dir/download.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  echo "$cdktf --hash=sha256:$cdktf_sha256" > "$dl/requirements.txt"
  echo "install-tf-standin: downloading $cdktf (49 MB, the hashicorp/google $version schema)" >&2
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$dl/requirements.txt" -d "$dl" \
    || fail "pip could not download $cdktf (with sha256 $cdktf_sha256)"
  wheel=$(ls "$dl"/cdktf_cdktf_provider_google-16.12.1-*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || fail "pip downloaded no cdktf_cdktf_provider_google-16.12.1 wheel"
  "$py" - "$wheel" "$tgz.part" <<'PY' || fail "no _jsii/provider-google@16.12.1.jsii.tgz in $wheel"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("cdktf_cdktf_provider_google/_jsii/provider-google@16.12.1.jsii.tgz") as f, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(f, out)
PY
  mv "$tgz.part" "$tgz"
  rm -rf "$dl"
  trap - EXIT
fi

# 3. the schema: the types infra/gcp uses (resource "google_…" / data "google_…")
mapfile -t types < <(find "$root/infra/gcp" -name '*.tf' -not -path '*/.terraform/*' -print0 \
  | xargs -0 sed -n -E 's/^[[:space:]]*(resource|data)[[:space:]]+"(google[a-z0-9_]*)".*/\1 \2/p' \
  | sed -e 's/^resource /resource./' -e 's/^data /data./' | sort -u)
[ "${#types[@]}" -gt 0 ] || fail "found no google resources or data sources in infra/gcp"
key=$( { printf '%s\n' "${types[@]}"; cat "$src/convert.py"; echo "$tgz"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$dir/schema.key" 2>/dev/null)" != "$key" ] || [ ! -s "$dir/schema.json" ]; then
  "$py" "$src/convert.py" "$tgz" "$dir/schema.json.part" "${types[@]}" \
    || fail "could not convert the hashicorp/google $version schema (see above)"
  mv "$dir/schema.json.part" "$dir/schema.json"
  echo "$key" > "$dir/schema.key"
fi

# 4. the mirror
mirror="$dir/mirror"
for name in google google-beta; do
  plat="$mirror/registry.terraform.io/hashicorp/$name/$version/linux_amd64"
  mkdir -p "$plat"
  exe="$plat/terraform-provider-${name}_v$version"
  cat > "$exe.part" <<SH
#!/bin/sh
# The hashicorp/$name stand-in (scripts/install-tf-standin.sh): serves hashicorp/google $version's
# schema for validate and plan, never applies.
exec "$py" "$src/provider.py" --schema "$dir/schema.json" --name $name
SH
  chmod +x "$exe.part"
  mv "$exe.part" "$exe"
done

# 5. the CLI configuration
cat > "$dir/terraformrc.part" <<CFG
# Written by scripts/install-tf-standin.sh: hashicorp/google and google-beta from the stand-in
# mirror, nothing from anywhere else.
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/google", "registry.terraform.io/hashicorp/google-beta"]
  }
}
CFG
mv "$dir/terraformrc.part" "$dir/terraformrc"

echo "tf stand-in ready:"
echo "  schema      $dir/schema.json (${#types[@]} types from $cdktf)"
echo "  mirror      $mirror (hashicorp/google, hashicorp/google-beta $version)"
echo "  CLI config  $dir/terraformrc (TF_CLI_CONFIG_FILE)"
