#!/usr/bin/env python3
"""The seed's batch job, followed literally, as the benchmark's baseline.

This is the plan of /work/shared/seeds/000_*.txt ("Project Plan: rrweb Session Stitching and
Consolidation") written the way it reads, over a local directory instead of a GCS bucket:

1. list every `.json` file in the bucket (flat);
2. download (read) and `json.load` each one; skip (and log) malformed files or files missing
   `session_guid`, `session_data` or `environment`;
3. group the parsed contents by `session_guid` in an in-memory dictionary;
4. per session: sort by the filename timestamp, concatenate every `session_data`, collect the
   timestamps, check `environment` (warn on a mismatch, keep the first);
5. `json.dump` a compact `{session_guid, rrweb_data, metadata{environment, timestamp_list}}`
   to `<output_dir>/<session_guid>.json`;
6. log the counts.

Single-threaded, standard library only. Used by bench/run.sh; not part of rrstitch.
"""

import argparse
import datetime
import json
import logging
import os
import sys

REQUIRED = ("session_guid", "session_data", "environment")


def filename_timestamp(name):
    """`2025-05-02T12:10:50.644423+0000.json` -> (aware datetime, timestamp text)."""
    text = name[: -len(".json")]
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"), text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="directory standing in for the bucket")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    log = logging.getLogger("baseline")

    # 1. List all .json files (flat structure).
    names = [n for n in os.listdir(args.bucket) if n.endswith(".json")]

    # 2-3. Download & parse each file, group by session_guid in memory.
    sessions = {}
    processed = skipped = 0
    for name in names:
        processed += 1
        try:
            with open(os.path.join(args.bucket, name), "r", encoding="utf-8") as f:
                content = json.load(f)
            if not isinstance(content, dict) or any(k not in content for k in REQUIRED):
                raise ValueError("missing required fields")
            when, text = filename_timestamp(name)
        except (ValueError, OSError) as e:  # json.JSONDecodeError is a ValueError
            log.warning("skipping malformed file %s: %s", name, e)
            skipped += 1
            continue
        sessions.setdefault(content["session_guid"], []).append((when, text, content))

    # 4-5. Merge each session and write it.
    os.makedirs(args.output_dir, exist_ok=True)
    written = 0
    for guid, entries in sessions.items():
        entries.sort(key=lambda e: e[0])
        rrweb_data = []
        timestamp_list = []
        environments = []
        for _, text, content in entries:
            rrweb_data.extend(content["session_data"])
            timestamp_list.append(text)
            if content["environment"] not in environments:
                environments.append(content["environment"])
        if len(environments) > 1:
            log.warning("session %s: inconsistent environment %s, using the first", guid, environments)
        out = {
            "session_guid": guid,
            "rrweb_data": rrweb_data,
            "metadata": {"environment": environments[0], "timestamp_list": timestamp_list},
        }
        with open(os.path.join(args.output_dir, guid + ".json"), "w", encoding="utf-8") as f:
            json.dump(out, f, separators=(",", ":"))
        written += 1

    # 6. Logging.
    log.info("files processed: %d, skipped: %d, sessions written: %d", processed, skipped, written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
