#!/usr/bin/env bash
# `make bench`: rrstitch backfill against the seed's plan in Python and against the I/O floor,
# on a generated bucket of a few hundred MB, then one 1 GiB session. Prints wall time, the
# ratio to each reference measured in this same run, and peak RSS (from /usr/bin/time -v).
#
#   BENCH_SESSIONS=230 BENCH_BIG_EVENTS=600000 bash bench/run.sh
#
# rrstitch and the floor run once to warm the page cache, then are measured (dropping the
# cache needs root); the baseline, slow enough for the cache to be warm already, runs once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sessions=${BENCH_SESSIONS:-230}
big_events=${BENCH_BIG_EVENTS:-660000}
work=target/bench
rr=target/release/rrstitch
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time (GNU time) is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }

cargo build --release --locked -p rrstitch-cli >&2
rm -rf "$work"
mkdir -p "$work"

echo "== generating $sessions sessions of ~750 events (rrweb shapes: Meta, deep FullSnapshot, incremental events)"
"$rr" generate --out "$work/bucket" --sessions "$sessions" --events 750 --seed 42 >/dev/null
files=$(ls "$work/bucket" | wc -l)
bytes=$(du -sb "$work/bucket" | cut -f1)
echo "   $files chunk files, $((bytes / 1000000)) MB"

# measure NAME CMD...: runs CMD twice (warm-up, then measured; WARM=0 skips the warm-up);
# leaves seconds and KiB in $secs and $rss.
measure() {
  local name=$1; shift
  if [ "${WARM:-1}" = 1 ]; then
    "$@" >/dev/null 2>&1 || { echo "bench: $name failed: $*" >&2; "$@"; exit 1; }
  fi
  /usr/bin/time -v -o "$work/$name.time" "$@" >/dev/null 2>"$work/$name.err" \
    || { cat "$work/$name.err" >&2; exit 1; }
  secs=$(python3 -c "
import re,sys
t=open(sys.argv[1]).read()
m=re.search(r'Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)', t)
h,mi,s=m.groups(); print(int(h or 0)*3600+int(mi)*60+float(s))" "$work/$name.time")
  rss=$(grep 'Maximum resident set size' "$work/$name.time" | grep -o '[0-9]*$')
}

floor() {
  # Read every chunk twice (once for the listing pass, once to stitch) and write the bytes once.
  cat "$work"/bucket/*.json > /dev/null
  cat "$work"/bucket/*.json > "$work/floor.out"
}
export -f floor
export work

echo "== baseline: bench/baseline.py (the seed's plan: single-threaded, json.load, json.dump)"
rm -rf "$work/out-baseline"
cat "$work"/bucket/*.json > /dev/null
WARM=0 measure baseline python3 bench/baseline.py --bucket "$work/bucket" --output_dir "$work/out-baseline"
base_s=$secs; base_rss=$rss
echo "== rrstitch backfill"
rm -rf "$work/out-rrstitch"
measure rrstitch "$rr" backfill --bucket "$work/bucket" --output-dir "$work/out-rrstitch"
rr_s=$secs; rr_rss=$rss
echo "== I/O floor: cat every chunk twice, write the bytes once"
measure floor bash -c floor
floor_s=$secs; floor_rss=$rss

python3 bench/compare.py "$work/out-baseline" "$work/out-rrstitch"

echo "== one big session: $big_events events"
rm -rf "$work/big"
"$rr" generate --out "$work/big" --sessions 1 --events "$big_events" --events-per-chunk 400 --seed 9 >/dev/null
big_bytes=$(du -sb "$work/big" | cut -f1)
largest_bytes=$(python3 -c "import os,sys; d=sys.argv[1]; print(max(os.path.getsize(os.path.join(d,n)) for n in os.listdir(d)))" "$work/big")
rm -rf "$work/out-big"
WARM=0 measure big "$rr" backfill --bucket "$work/big" --output-dir "$work/out-big"
big_s=$secs; big_rss=$rss
out_bytes=$(du -sb "$work/out-big" | cut -f1)

python3 - "$files" "$bytes" "$base_s" "$base_rss" "$rr_s" "$rr_rss" "$floor_s" "$floor_rss" \
  "$big_bytes" "$largest_bytes" "$big_s" "$big_rss" "$out_bytes" <<'PY'
import sys
(files, bytes_, base_s, base_rss, rr_s, rr_rss, floor_s, floor_rss,
 big_bytes, largest, big_s, big_rss, out_bytes) = sys.argv[1:]
mib = lambda kib: int(kib) / 1024
f = float
print()
print(f"bucket: {files} chunks, {int(bytes_)/1e6:.0f} MB")
print(f"{'':28}{'wall':>9}{'peak RSS':>12}")
print(f"{'baseline.py (seed plan)':28}{f(base_s):>8.2f}s{mib(base_rss):>9.0f} MiB")
print(f"{'rrstitch backfill':28}{f(rr_s):>8.2f}s{mib(rr_rss):>9.0f} MiB")
print(f"{'I/O floor (cat x2)':28}{f(floor_s):>8.2f}s{mib(floor_rss):>9.0f} MiB")
speed = f(base_s) / f(rr_s)
floor_ratio = f(rr_s) / f(floor_s)
print()
print(f"rrstitch vs baseline:  {speed:.0f}x faster          (target >= 60x)  {'MET' if speed >= 60 else 'MISSED'}")
print(f"rrstitch vs I/O floor: {floor_ratio:.2f}x the floor's time  (target <= 1.5x) {'MET' if floor_ratio <= 1.5 else 'MISSED'}")
print(f"rrstitch peak RSS:     {mib(rr_rss):.0f} MiB              (target <= 64)   {'MET' if mib(rr_rss) <= 64 else 'MISSED'}")
limit = 64 + int(largest) / 2**20
print(f"1 session, {int(big_bytes)/2**30:.2f} GiB in, {int(out_bytes)/2**30:.2f} GiB out: {f(big_s):.1f}s, "
      f"peak RSS {mib(big_rss):.0f} MiB (target <= 64 MiB + largest chunk {int(largest)/2**20:.1f} MiB = {limit:.0f}) "
      f"{'MET' if mib(big_rss) <= limit else 'MISSED'}")
PY
