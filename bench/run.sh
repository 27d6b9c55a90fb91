#!/usr/bin/env bash
# `make bench`: rrstitch backfill against the seed's plan in Python and against the I/O floor,
# on three bucket profiles, then one 1 GiB session. Prints, per profile, wall time, the ratio
# to each reference measured in this same run, and peak RSS (from /usr/bin/time -v).
#
# Profiles (what SDKs upload: PostHog flushes every 2 s, Sentry every 5 s):
#   large   ~64 KB chunks  (BENCH_SESSIONS sessions of 750 events, ~40 events a chunk)
#   40k     ~40 KB chunks  (300 sessions, ~25 events a chunk: ~9,000 chunks)
#   5k      ~5 KB chunks   (500 sessions, ~3 events a chunk: ~20,000 chunks)
#
#   BENCH_PROFILES="large 40k 5k" BENCH_SESSIONS=230 BENCH_BIG_EVENTS=660000 bash bench/run.sh
#
# rrstitch and the floor run once to warm the page cache, then are measured (dropping the
# cache needs root); the baseline, slow enough for the cache to be warm already, runs once.
# Insights (metadata.insights) cost: on every profile rrstitch also runs with RRSTITCH_INSIGHTS=0,
# on and off alternating three times each, and the fastest of each is compared (target <= 10 %).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sessions=${BENCH_SESSIONS:-230}
big_events=${BENCH_BIG_EVENTS:-660000}
profiles=${BENCH_PROFILES:-large 40k 5k}
work=target/bench
rr=target/release/rrstitch
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time (GNU time) is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }

cargo build --release --locked -p rrstitch-cli >&2
rm -rf "$work"
mkdir -p "$work"
: > "$work/profiles.tsv"

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

# fastest A B: the smaller of two seconds, A = 0 meaning none yet.
fastest() {
  python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(b if a == 0 else min(a, b))" "$1" "$2"
}

floor() {
  # Read every chunk twice (once for the listing pass, once to stitch) and write the bytes once.
  find "$work/bucket" -name '*.json' -print0 | xargs -0 cat > /dev/null
  find "$work/bucket" -name '*.json' -print0 | xargs -0 cat > "$work/floor.out"
}
export -f floor
export work

# profile NAME SESSIONS EVENTS EVENTS_PER_CHUNK: one bucket, the three runs, one row.
profile() {
  local name=$1 n=$2 events=$3 per_chunk=$4
  rm -rf "$work/bucket" "$work/out-baseline" "$work/out-rrstitch"
  echo "== profile $name: $n sessions of ~$events events, ~$per_chunk events a chunk"
  "$rr" generate --out "$work/bucket" --sessions "$n" --events "$events" \
    --events-per-chunk "$per_chunk" --seed 42 >/dev/null
  local files bytes
  files=$(find "$work/bucket" -name '*.json' | wc -l)
  bytes=$(du -sb "$work/bucket" | cut -f1)
  echo "   $files chunk files, $((bytes / 1000000)) MB"
  echo "   baseline: bench/baseline.py (the seed's plan: single-threaded, json.load, json.dump)"
  find "$work/bucket" -name '*.json' -print0 | xargs -0 cat > /dev/null
  WARM=0 measure baseline python3 bench/baseline.py --bucket "$work/bucket" --output_dir "$work/out-baseline"
  local base_s=$secs base_rss=$rss
  echo "   rrstitch backfill"
  measure rrstitch "$rr" backfill --bucket "$work/bucket" --output-dir "$work/out-rrstitch"
  local rr_s=$secs rr_rss=$rss
  echo "   insights off vs on: RRSTITCH_INSIGHTS=0 and =1, alternating, fastest of 3 each"
  local off_s=0 on_s=0
  for _ in 1 2 3; do
    rm -rf "$work/out-off" "$work/out-on"
    WARM=0 RRSTITCH_INSIGHTS=0 measure insights-off "$rr" backfill --bucket "$work/bucket" --output-dir "$work/out-off"
    off_s=$(fastest "$off_s" "$secs")
    WARM=0 RRSTITCH_INSIGHTS=1 measure insights-on "$rr" backfill --bucket "$work/bucket" --output-dir "$work/out-on"
    on_s=$(fastest "$on_s" "$secs")
  done
  echo "   I/O floor: cat every chunk twice, write the bytes once"
  measure floor bash -c floor
  local floor_s=$secs
  python3 bench/compare.py "$work/out-baseline" "$work/out-rrstitch" | sed 's/^/   /'
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$files" "$bytes" "$base_s" "$base_rss" \
    "$rr_s" "$rr_rss" "$floor_s" "$off_s" "$on_s" >> "$work/profiles.tsv"
}

for p in $profiles; do
  case $p in
    large) profile large "$sessions" 750 40 ;;
    40k) profile 40k 300 750 25 ;;
    5k) profile 5k 500 120 3 ;;
    *) echo "bench: unknown profile $p (large, 40k, 5k)" >&2; exit 1 ;;
  esac
done

echo "== one big session: $big_events events"
rm -rf "$work/big"
"$rr" generate --out "$work/big" --sessions 1 --events "$big_events" --events-per-chunk 400 --seed 9 >/dev/null
big_bytes=$(du -sb "$work/big" | cut -f1)
largest_bytes=$(python3 -c "import os,sys; d=sys.argv[1]; print(max(os.path.getsize(os.path.join(d,n)) for n in os.listdir(d)))" "$work/big")
rm -rf "$work/out-big"
WARM=0 measure big "$rr" backfill --bucket "$work/big" --output-dir "$work/out-big"
big_s=$secs; big_rss=$rss
out_bytes=$(du -sb "$work/out-big" | cut -f1)
# The same session with segments written beside the single file (RRSTITCH_SEGMENTS=1): the gzip
# of every event is extra work, the memory bound must hold all the same.
rm -rf "$work/out-seg"
WARM=0 RRSTITCH_SEGMENTS=1 measure big-segments "$rr" backfill --bucket "$work/big" --output-dir "$work/out-seg"
seg_s=$secs; seg_rss=$rss
seg_files=$(find "$work/out-seg" -name '*.json.gz' | wc -l)

python3 - "$work/profiles.tsv" "$big_bytes" "$largest_bytes" "$big_s" "$big_rss" "$out_bytes" \
  "$seg_s" "$seg_rss" "$seg_files" <<'PY'
import sys
tsv, big_bytes, largest, big_s, big_rss, out_bytes, seg_s, seg_rss, seg_files = sys.argv[1:]
mib = lambda kib: int(kib) / 1024
f = float
print()
print(f"{'profile':9}{'chunks':>8}{'MB':>6}{'avg KB':>8}{'baseline':>10}{'rrstitch':>10}{'floor':>8}"
      f"{'vs base':>9}{'vs floor':>9}{'RSS MiB':>9}")
met = True
for line in open(tsv):
    name, files, bytes_, base_s, base_rss, rr_s, rr_rss, floor_s, off_s, on_s = line.split()
    speed, floor_ratio = f(base_s) / f(rr_s), f(rr_s) / f(floor_s)
    ok = speed >= 60 and floor_ratio <= 1.5 and mib(rr_rss) <= 64
    met &= ok
    print(f"{name:9}{int(files):>8}{int(bytes_)/1e6:>6.0f}{int(bytes_)/int(files)/1e3:>8.1f}"
          f"{f(base_s):>9.2f}s{f(rr_s):>9.2f}s{f(floor_s):>7.2f}s{speed:>8.0f}x{floor_ratio:>8.2f}x"
          f"{mib(rr_rss):>9.0f}  {'MET' if ok else 'MISSED'}")
print("targets: >= 60x the baseline, <= 1.5x the I/O floor, <= 64 MiB peak RSS, on every profile:",
      "MET" if met else "MISSED")
print()
print(f"{'profile':9}{'insights off':>14}{'on':>9}{'overhead':>10}")
insights_met = True
for line in open(tsv):
    name, *_, off_s, on_s = line.split()
    overhead = f(on_s) / f(off_s) - 1
    insights_met &= overhead <= 0.10
    print(f"{name:9}{f(off_s):>13.2f}s{f(on_s):>8.2f}s{overhead * 100:>9.1f}%  "
          f"{'MET' if overhead <= 0.10 else 'MISSED'}")
print("target: insights cost <= 10 % of a stitch (fastest of 3 runs each, same run), on every profile:",
      "MET" if insights_met else "MISSED")
limit = 64 + int(largest) / 2**20
print(f"1 session, {int(big_bytes)/2**30:.2f} GiB in, {int(out_bytes)/2**30:.2f} GiB out: {f(big_s):.1f}s, "
      f"peak RSS {mib(big_rss):.0f} MiB (target <= 64 MiB + largest chunk {int(largest)/2**20:.1f} MiB = {limit:.0f}) "
      f"{'MET' if mib(big_rss) <= limit else 'MISSED'}")
print(f"the same with segments ({seg_files} segments): {f(seg_s):.1f}s ({f(seg_s)/f(big_s):.2f}x the single file alone), "
      f"peak RSS {mib(seg_rss):.0f} MiB {'MET' if mib(seg_rss) <= limit else 'MISSED'}")
PY
