#!/usr/bin/env python3
"""Checks two output directories hold the same sessions with the same JSON values for the
seed's fields (session_guid, rrweb_data, metadata.environment, metadata.timestamp_list).

    python3 bench/compare.py BASELINE_DIR RRSTITCH_DIR
"""
import json
import os
import sys


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    a_names = sorted(os.listdir(a_dir))
    b_names = sorted(os.listdir(b_dir))
    if a_names != b_names:
        sys.exit(f"different sessions: {len(a_names)} vs {len(b_names)}")
    for name in a_names:
        with open(os.path.join(a_dir, name)) as f:
            a = json.load(f)
        with open(os.path.join(b_dir, name)) as f:
            b = json.load(f)
        for key in ("session_guid", "rrweb_data"):
            if a[key] != b[key]:
                sys.exit(f"{name}: {key} differs")
        for key in ("environment", "timestamp_list"):
            if a["metadata"][key] != b["metadata"][key]:
                sys.exit(f"{name}: metadata.{key} differs")
    print(f"outputs agree: {len(a_names)} sessions, same values for the seed's fields")


if __name__ == "__main__":
    main()
