#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) with libFuzzer via cargo-fuzz, the corpus
# seeded from the real fixtures, and prints how many executions each reached.
#   scripts/fuzz.sh 60          # what make test runs
#   scripts/fuzz.sh 1800        # what make soak runs
# cargo-fuzz needs nightly compiler flags: the nightly toolchain is used when the machine
# has one, else stable with RUSTC_BOOTSTRAP=1 (same compiler features, no download).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
cd "$root"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
  toolchain=nightly
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
  toolchain="stable with RUSTC_BOOTSTRAP=1"
fi
work="$root/target/fuzz-work"
mkdir -p "$work"
summary="$work/summary.txt"
: > "$summary"
for target in chunk events; do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  if [ "$target" = chunk ]; then
    cp fixtures/rrweb-form/chunks/*.json fixtures/real/*/chunks/*.json "$corpus/"
  else
    printf '%s' '{"specversion":"1.0","id":"1","source":"//storage.googleapis.com/projects/_/buckets/b","type":"google.cloud.storage.object.v1.finalized","datacontenttype":"application/json","data":{"bucket":"b","name":"2025-05-02T12:10:50.644423+0000.json","generation":"1"}}' > "$corpus/structured.json"
    printf '%s' '{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"2025-05-02T12%3A10%3A50.644423%2B0000.json","eTag":"x"}}}]}' > "$corpus/s3.json"
    printf '%s' '{"session_guid":"abc"}' > "$corpus/finalize.json"
  fi
  log="$work/$target.log"
  echo "fuzz: $target for ${secs}s ($toolchain)"
  "${fuzz[@]}" run --fuzz-dir fuzz "$target" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 > "$log" 2>&1 \
    || { tail -50 "$log"; echo "fuzz: $target FAILED (crash or error above; artifacts in fuzz/artifacts/$target)"; exit 1; }
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz: $target: ${runs:-?} executions in ${secs}s, no crash" | tee -a "$summary"
done
