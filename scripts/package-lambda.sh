#!/usr/bin/env bash
# Builds the two Lambda packages with cargo-lambda (from PyPI, into .build/venv, with the zig
# it brings): target/lambda/rrstitch-ingest/bootstrap.zip and
# target/lambda/rrstitch-finalize/bootstrap.zip, for provided.al2023.
#   ARCH=arm64 builds for Graviton (then set architecture = "arm64" in infra/aws).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.build/venv"
arch=${ARCH:-x86_64}
fail() { echo "package-lambda: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is required"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "could not create a venv at $venv"
fi
if [ ! -x "$venv/bin/cargo-lambda" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda \
    || fail "pip could not install cargo-lambda"
fi
export PATH="$venv/bin:$PATH"
case "$arch" in
  x86_64) flag=(--x86-64) ;;
  arm64) flag=(--arm64) ;;
  *) fail "ARCH must be x86_64 or arm64, not $arch" ;;
esac
cd "$root"
# No debug info in the packages: a smaller zip is a faster cold start.
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo lambda build --release --locked "${flag[@]}" \
  --bin rrstitch-ingest --bin rrstitch-finalize --output-format zip
ls -l target/lambda/rrstitch-ingest/bootstrap.zip target/lambda/rrstitch-finalize/bootstrap.zip
