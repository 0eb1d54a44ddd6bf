"""Per-job wall times from a Snakemake run's console log: when each job started and finished (Snakemake
prints a timestamp line before each), as CSV on stdout. Jobs that never finished have no end.

    python3 scripts/job_times.py docs/gpu/compile_once/after_sweep.log > jobs.csv
"""

from __future__ import annotations

import csv
import re
import sys
from datetime import datetime

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def job_times(lines: list[str]) -> list[dict]:
    jobs: dict[str, dict] = {}
    stamp = None
    current = None
    for line in lines:
        line = line.rstrip("\n")
        m = STAMP.match(line)
        if m:
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            current = {"rule": m.group(1), "start": stamp, "end": None, "wildcards": ""}
            continue
        if current is not None and line.strip().startswith("jobid:"):
            jobs[line.split(":", 1)[1].strip()] = current
        elif current is not None and line.strip().startswith("wildcards:"):
            current["wildcards"] = line.split(":", 1)[1].strip()
        m = re.match(r"^Finished jobid: (\d+)", line)
        if m and m.group(1) in jobs:
            jobs[m.group(1)]["end"] = stamp
    t0 = min(j["start"] for j in jobs.values())
    return [{"rule": j["rule"], "wildcards": j["wildcards"], "start_s": (j["start"] - t0).total_seconds(),
             "end_s": (j["end"] - t0).total_seconds() if j["end"] else "",
             "seconds": (j["end"] - j["start"]).total_seconds() if j["end"] else ""} for j in jobs.values()]


def main() -> int:
    rows = job_times(open(sys.argv[1], errors="replace").readlines())
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["start_s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
