#!/usr/bin/env bash
# Proves infra/aws on this machine: terraform init (from the local provider mirror), validate,
# apply against a running moto server, check every resource through boto3, destroy, and check
# the buckets are gone. Exits non-zero on any failure.
#
# Needs:
#   MOTO_ENDPOINT  a running moto server, e.g. http://127.0.0.1:5000
#                  (moto_server -H 127.0.0.1 -p 5000; scripts/install-emulators.sh installs it)
#   INGEST_ZIP     path of the ingest Lambda zip   (target/lambda/rrstitch-ingest/bootstrap.zip)
#   FINALIZE_ZIP   path of the finalize Lambda zip (target/lambda/rrstitch-finalize/bootstrap.zip)
# Optional:
#   TF_PLUGIN_DIR  provider mirror (default /opt/tf-plugins, holding hashicorp/aws 5.100.0)
#   PYTHON         a python3 with boto3 (default: .build/venv/bin/python if present, else python3)
#   CHUNK_PREFIX   apply with this chunk_prefix and check the notification's prefix filter
#   FINALIZE_MODE  apply with this finalize_mode (inline, the default, or queue: the finalize
#                  queue, its dead-letter queue and event source mapping are created too)
#   KEEP_WORKDIR=1 keep the temporary terraform working directory for inspection
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_PLUGIN_DIR="${TF_PLUGIN_DIR:-/opt/tf-plugins}"

die() { echo "tf-moto-apply: FAIL: $*" >&2; exit 1; }

command -v terraform >/dev/null 2>&1 \
  || die "terraform is not installed (need terraform >= 1.5 on PATH)"
[[ -d "$TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" ]] \
  || die "no provider mirror at $TF_PLUGIN_DIR (expected $TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws/5.100.0); set TF_PLUGIN_DIR"
[[ -n "${MOTO_ENDPOINT:-}" ]] || die "MOTO_ENDPOINT is not set (e.g. http://127.0.0.1:5000)"
[[ -n "${INGEST_ZIP:-}" && -f "$INGEST_ZIP" ]] || die "INGEST_ZIP is not set or not a file: '${INGEST_ZIP:-}'"
[[ -n "${FINALIZE_ZIP:-}" && -f "$FINALIZE_ZIP" ]] || die "FINALIZE_ZIP is not set or not a file: '${FINALIZE_ZIP:-}'"
INGEST_ZIP="$(cd "$(dirname "$INGEST_ZIP")" && pwd)/$(basename "$INGEST_ZIP")"
FINALIZE_ZIP="$(cd "$(dirname "$FINALIZE_ZIP")" && pwd)/$(basename "$FINALIZE_ZIP")"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.build/venv/bin/python" ]]; then PYTHON="$ROOT/.build/venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import boto3' 2>/dev/null || die "$PYTHON has no boto3 (it comes with moto: pip install 'moto[server]')"
curl -fsS -o /dev/null "$MOTO_ENDPOINT/moto-api/" 2>/dev/null \
  || "$PYTHON" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5)" "$MOTO_ENDPOINT" >/dev/null 2>&1 \
  || die "no moto server answers at $MOTO_ENDPOINT"

# Test credentials and region, for terraform and boto3 alike; nothing reaches real AWS.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
export AWS_EC2_METADATA_DISABLED=true
export MOTO_ENDPOINT

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rrstitch-tf-moto.XXXXXX")"
cleanup() {
  if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then echo "tf-moto-apply: working directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# A CLI config of our own: no checkpoint calls, no stray user config.
cat >"$WORK/terraformrc" <<CFG
disable_checkpoint = true
CFG
export TF_CLI_CONFIG_FILE="$WORK/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

cp -R "$ROOT/infra/aws" "$WORK/aws"
rm -rf "$WORK/aws/.terraform" "$WORK/aws/terraform.tfstate"* "$WORK/aws/.terraform.lock.hcl"
cd "$WORK/aws"

SUFFIX="$(date +%s)-$$"
CHUNKS="rrstitch-chunks-$SUFFIX"
RESULTS="rrstitch-results-$SUFFIX"
PREFIX="rrstitch-t$$"
TF_VARS=(
  -var "endpoint_url=$MOTO_ENDPOINT"
  -var "region=us-east-1"
  -var "name_prefix=$PREFIX"
  -var "chunk_bucket_name=$CHUNKS"
  -var "results_bucket_name=$RESULTS"
  -var "ingest_zip=$INGEST_ZIP"
  -var "finalize_zip=$FINALIZE_ZIP"
  -var "force_destroy=true"
  -var "chunk_prefix=${CHUNK_PREFIX:-}"
  -var "finalize_mode=${FINALIZE_MODE:-inline}"
)
export CHUNK_PREFIX="${CHUNK_PREFIX:-}" FINALIZE_MODE="${FINALIZE_MODE:-inline}"

step() { echo; echo "== $*"; }

step "terraform init -plugin-dir=$TF_PLUGIN_DIR"
terraform init -plugin-dir="$TF_PLUGIN_DIR" -input=false -no-color >init.log 2>&1 \
  || { cat init.log; die "terraform init failed"; }
grep -E 'Installed hashicorp/aws|Terraform has been successfully initialized' init.log || true

step "terraform validate"
terraform validate -no-color

step "terraform apply (moto at $MOTO_ENDPOINT)"
APPLIED=0
destroy() {
  if [[ "$APPLIED" == 1 ]]; then
    echo; echo "== terraform destroy (after a failure)"
    terraform destroy -auto-approve -input=false -no-color "${TF_VARS[@]}" >destroy.log 2>&1 || tail -20 destroy.log
  fi
}
trap 'destroy; cleanup' EXIT
APPLIED=1
terraform apply -auto-approve -input=false -no-color "${TF_VARS[@]}" >apply.log 2>&1 \
  || { tail -60 apply.log; die "terraform apply failed"; }
grep -E '^Apply complete' apply.log

step "terraform plan after apply: nothing left to change"
set +e
terraform plan -detailed-exitcode -input=false -no-color "${TF_VARS[@]}" >replan.log 2>&1
PLAN_RC=$?
set -e
case "$PLAN_RC" in
  0) echo "PASS  second plan: no changes" ;;
  2) grep -E '^ +[#~+-]|will be|must be' replan.log | head -60; die "second plan wants changes: apply is not idempotent" ;;
  *) tail -40 replan.log; die "terraform plan failed" ;;
esac

step "terraform state list"
terraform state list -no-color
terraform output -json -no-color >outputs.json

step "checks against moto (boto3)"
"$PYTHON" - "$CHUNKS" "$RESULTS" "$PREFIX" outputs.json <<'PY'
import json, sys
import boto3

chunks, results, prefix, outputs_path = sys.argv[1:5]
import os
endpoint = os.environ["MOTO_ENDPOINT"]
out = {k: v["value"] for k, v in json.load(open(outputs_path)).items()}

def client(name):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")

s3, ddb, lam, iam, events, logs = (client(n) for n in ("s3", "dynamodb", "lambda", "iam", "events", "logs"))
failures = []

def check(label, ok, detail=""):
    print(("PASS  " if ok else "FAIL  ") + label + (f"  ({detail})" if detail else ""))
    if not ok:
        failures.append(label)

def skipped(label, why):
    print(f"SKIPPED CHECK: {label}: {why}")

# Buckets
names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
check(f"chunk bucket {chunks} exists", chunks in names)
check(f"results bucket {results} exists", results in names)
check("outputs name the buckets", out["chunk_bucket"] == chunks and out["results_bucket"] == results)

# Functions
ingest = lam.get_function(FunctionName=out["ingest_function"])["Configuration"]
finalize = lam.get_function(FunctionName=out["finalize_function"])["Configuration"]
for label, fn in (("ingest", ingest), ("finalize", finalize)):
    check(f"{label} function runtime provided.al2023", fn["Runtime"] == "provided.al2023", fn["Runtime"])
    check(f"{label} function handler bootstrap", fn["Handler"] == "bootstrap", fn["Handler"])
    check(f"{label} function architecture x86_64", fn.get("Architectures") == ["x86_64"], fn.get("Architectures"))
env_i = ingest["Environment"]["Variables"]
env_f = finalize["Environment"]["Variables"]
check("ingest env: chunks/index/table/log format",
      env_i.get("RRSTITCH_CHUNKS") == f"s3://{chunks}" and env_i.get("RRSTITCH_INDEX") == "dynamodb"
      and env_i.get("RRSTITCH_DYNAMODB_TABLE") == out["table_name"] and env_i.get("RRSTITCH_LOG_FORMAT") == "json",
      ", ".join(sorted(env_i)))
check("ingest env has no results/finalize-only variables",
      not any(k in env_i for k in ("RRSTITCH_RESULTS", "RRSTITCH_IDLE_SECS", "RRSTITCH_LEASE_SECS", "RRSTITCH_OUTPUT_GZIP")))
check("finalize env: chunks/results/index/table/idle/lease/gzip/max bytes",
      env_f.get("RRSTITCH_CHUNKS") == f"s3://{chunks}" and env_f.get("RRSTITCH_RESULTS") == f"s3://{results}"
      and env_f.get("RRSTITCH_INDEX") == "dynamodb" and env_f.get("RRSTITCH_DYNAMODB_TABLE") == out["table_name"]
      and env_f.get("RRSTITCH_IDLE_SECS") == "300" and env_f.get("RRSTITCH_LEASE_SECS") == "600"
      and env_f.get("RRSTITCH_OUTPUT_GZIP") == "false" and env_f.get("RRSTITCH_MAX_CHUNK_BYTES") == "67108864",
      ", ".join(sorted(env_f)))

# Roles
for label, fn, arn in (("ingest", ingest, out["ingest_role_arn"]), ("finalize", finalize, out["finalize_role_arn"])):
    role_name = arn.split("/")[-1]
    role = iam.get_role(RoleName=role_name)["Role"]
    check(f"{label} role {role_name} exists and is the function's role", fn["Role"] == role["Arn"])
    pols = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    check(f"{label} role has its inline policy", len(pols) == 1, pols)
    doc = iam.get_role_policy(RoleName=role_name, PolicyName=pols[0])["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    actions = {a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    check(f"{label} policy has no wildcard actions", not any(a.endswith("*") for a in actions), sorted(actions))
    if label == "ingest":
        check("ingest policy: s3:GetObject and s3:DeleteObject (refused chunks of erased sessions), no writes to S3", {"s3:GetObject", "s3:DeleteObject"} <= actions and "s3:PutObject" not in actions)
    else:
        check("finalize policy: s3:PutObject + s3:ListBucket + dynamodb:Query",
              {"s3:PutObject", "s3:ListBucket", "dynamodb:Query"} <= actions)

# Bucket notification → ingest
notif = s3.get_bucket_notification_configuration(Bucket=chunks)
lambda_confs = notif.get("LambdaFunctionConfigurations", [])
check("chunk bucket notifies the ingest function on s3:ObjectCreated:*",
      any(c["LambdaFunctionArn"] == ingest["FunctionArn"] and "s3:ObjectCreated:*" in c["Events"] for c in lambda_confs),
      json.dumps(lambda_confs))
want_prefix = os.environ.get("CHUNK_PREFIX", "")
rules = [r for c in lambda_confs for r in c.get("Filter", {}).get("Key", {}).get("FilterRules", [])]
if want_prefix:
    check(f"notification filters on prefix {want_prefix!r}",
          any(r["Name"].lower() == "prefix" and r["Value"] == want_prefix for r in rules), rules)
    check("ingest env RRSTITCH_CHUNK_PREFIX set", env_i.get("RRSTITCH_CHUNK_PREFIX") == want_prefix)
else:
    check("notification has no prefix filter", not rules, rules)
    check("ingest env has no empty RRSTITCH_CHUNK_PREFIX", "RRSTITCH_CHUNK_PREFIX" not in env_i)
check("results bucket has no notification", not s3.get_bucket_notification_configuration(Bucket=results).get("LambdaFunctionConfigurations"))

# Lambda permissions (resource policies)
def policy_statements(name):
    return json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
st_i = policy_statements(out["ingest_function"])
check("ingest permission for s3.amazonaws.com from the chunk bucket",
      any(s["Principal"].get("Service") == "s3.amazonaws.com" and chunks in json.dumps(s.get("Condition", {})) for s in st_i))
st_f = policy_statements(out["finalize_function"])
check("finalize permission for events.amazonaws.com from the sweep rule",
      any(s["Principal"].get("Service") == "events.amazonaws.com" and out["sweep_rule"] in json.dumps(s.get("Condition", {})) for s in st_f))
check("no lambda permission for a public principal",
      not any(s.get("Principal") in ("*", {"AWS": "*"}) for s in st_i + st_f))

# EventBridge rule + target
rule = events.describe_rule(Name=out["sweep_rule"])
check("sweep rule schedule rate(5 minutes)", rule.get("ScheduleExpression") == "rate(5 minutes)", rule.get("ScheduleExpression"))
check("sweep rule enabled", rule.get("State") == "ENABLED", rule.get("State"))
targets = events.list_targets_by_rule(Rule=out["sweep_rule"])["Targets"]
check("sweep rule targets the finalize function", [t["Arn"] for t in targets] == [finalize["FunctionArn"]], targets)

# DynamoDB
table = ddb.describe_table(TableName=out["table_name"])["Table"]
keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
check("table keys pk (HASH) / sk (RANGE)", keys == {"pk": "HASH", "sk": "RANGE"}, keys)
check("table billing PAY_PER_REQUEST", table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST")
gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
g = gsis.get("idle_by_shard")
check("GSI idle_by_shard (idle_pk HASH, idle_sk RANGE, projection KEYS_ONLY), the only GSI",
      g is not None and list(gsis) == ["idle_by_shard"]
      and {k["AttributeName"]: k["KeyType"] for k in g["KeySchema"]} == {"idle_pk": "HASH", "idle_sk": "RANGE"}
      and g["Projection"]["ProjectionType"] == "KEYS_ONLY", g and g["KeySchema"])
attrs = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
check("attribute types: pk, sk, idle_pk S; idle_sk N", attrs == {"pk": "S", "sk": "S", "idle_pk": "S", "idle_sk": "N"}, attrs)
ttl = ddb.describe_time_to_live(TableName=out["table_name"])["TimeToLiveDescription"]
check("TTL enabled on expire_at", ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == "expire_at", ttl)

# Function URL
try:
    url = lam.get_function_url_config(FunctionName=out["finalize_function"])
    check("finalize function URL with AuthType AWS_IAM", url["AuthType"] == "AWS_IAM", url["AuthType"])
    check("function URL output matches", url["FunctionUrl"] == out["finalize_url"])
except lam.exceptions.ResourceNotFoundException as e:
    check("finalize function URL exists", False, str(e))
try:
    lam.get_function_url_config(FunctionName=out["ingest_function"])
    check("ingest has no function URL", False)
except lam.exceptions.ResourceNotFoundException:
    check("ingest has no function URL", True)

# Logs
groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}-")["logGroups"]}
for fn in (out["ingest_function"], out["finalize_function"]):
    g = groups.get(f"/aws/lambda/{fn}")
    check(f"log group /aws/lambda/{fn} with retention 30 days", g is not None and g.get("retentionInDays") == 30, g and g.get("retentionInDays"))

print()
if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
PY

step "terraform destroy"
terraform destroy -auto-approve -input=false -no-color "${TF_VARS[@]}" >destroy.log 2>&1 \
  || { tail -40 destroy.log; die "terraform destroy failed"; }
APPLIED=0
grep -E '^Destroy complete' destroy.log

step "checks after destroy"
"$PYTHON" - "$CHUNKS" "$RESULTS" "$PREFIX" <<'PY'
import os, sys
import boto3
chunks, results, prefix = sys.argv[1:4]
ep = os.environ["MOTO_ENDPOINT"]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1")
lam = boto3.client("lambda", endpoint_url=ep, region_name="us-east-1")
names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
fns = [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(prefix + "-")]
bad = 0
for label, ok in ((f"chunk bucket {chunks} gone", chunks not in names),
                  (f"results bucket {results} gone", results not in names),
                  (f"functions {prefix}-* gone", not fns)):
    print(("PASS  " if ok else "FAIL  ") + label)
    bad += not ok
sys.exit(1 if bad else 0)
PY
echo
echo "tf-moto-apply: OK (init, validate, apply, checks, destroy)"
