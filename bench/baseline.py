#!/usr/bin/env python3
"""The seed's plan, followed literally, over a local directory standing in for the bucket.

Single-threaded; every file is read and parsed with json.load into one in-memory dictionary
grouped by session_guid; each session is sorted by file name, concatenated and written with
json.dump (compact). This is the baseline `make bench` measures rrstitch against.

    python3 bench/baseline.py --bucket DIR --output_dir OUT
"""
import argparse
import json
import logging
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", required=True, help="directory holding the chunk files")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    # 1. List all .json files (flat).
    names = [n for n in os.listdir(args.bucket) if n.endswith(".json")]

    # 2./3. Download, parse, validate, group by session_guid.
    sessions = {}
    processed = skipped = 0
    for name in names:
        processed += 1
        try:
            with open(os.path.join(args.bucket, name), "rb") as f:
                data = json.load(f)
            guid = data["session_guid"]
            events = data["session_data"]
            environment = data["environment"]
        except (ValueError, KeyError, TypeError) as e:
            logging.warning("skipping malformed file %s: %s", name, e)
            skipped += 1
            continue
        timestamp = name[: -len(".json")]
        sessions.setdefault(guid, []).append((timestamp, events, environment))

    # 4./5. Merge each session in filename order and write it.
    os.makedirs(args.output_dir, exist_ok=True)
    written = 0
    for guid, entries in sessions.items():
        entries.sort(key=lambda e: e[0])
        rrweb_data = []
        timestamps = []
        environment = entries[0][2]
        for timestamp, events, env in entries:
            rrweb_data.extend(events)
            timestamps.append(timestamp)
            if env != environment:
                logging.warning("session %s: environment %r differs from %r", guid, env, environment)
        out = {
            "session_guid": guid,
            "rrweb_data": rrweb_data,
            "metadata": {"environment": environment, "timestamp_list": timestamps},
        }
        with open(os.path.join(args.output_dir, guid + ".json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))
        written += 1

    # 6. Counts.
    logging.warning("files processed: %d, skipped: %d, sessions written: %d", processed, skipped, written)


if __name__ == "__main__":
    main()
