#!/usr/bin/env bash
# The test run `make test` ends with: every cargo test of the workspace, then each fuzz target
# for FUZZ_SECS (default 60), then one line that counts them all, `N passed, N failed`, so the
# last line of the run says how it went (cargo's own last line is a doc-test run's count).
# Exits non-zero if anything failed; the count is printed either way.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p target
log=target/test-output.log
# --no-fail-fast: one failing test binary must not hide how the others went.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
read -r passed failed < <(awk '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/) p += $(i - 1)
      if ($(i) ~ /^failed;?$/) f += $(i - 1)
    }
  }
  END { print p + 0, f + 0 }' "$log")
if [ "$status" -eq 0 ]; then
  if bash scripts/fuzz.sh "${FUZZ_SECS:-60}"; then
    passed=$((passed + $(grep -c 'no crash' target/fuzz-work/summary.txt)))
  else
    failed=$((failed + 1))
    status=1
  fi
elif [ "$failed" -eq 0 ]; then
  # cargo failed without a failing test (a build error, a crashed test binary): say so.
  failed=1
fi
echo "$passed passed, $failed failed"
exit "$status"
