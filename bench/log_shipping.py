#!/usr/bin/env python3
"""Lines per second through the log pipeline and the delay from write to stored.

Writes --lines winston-style JSON lines on a shipper (the emulator of the
sample API's logger, molecule/logs/files/winston_emulator.py, at --rate lines
per second, 0 = as fast as it can) and waits until the collector stored all
of them. Printed:

  written_per_s   lines per second the writer managed
  stored_per_s    lines per second through the pipeline: lines / (last stored - first written)
  p50_ms, p99_ms, max_ms   delay from the line's timestamp (written) to the collector's
                  "received" (both clocks are this machine's: containers share its kernel)
  lost, duplicated

  molecule converge -s logs        # collector + shipper, converged
  bench/log_shipping.py            # --lines 20000 --rate 0 by default
  (with WEBSTACK_RUN_ID set for both when the scenario's containers carry a run id)

Bounded by --max-seconds (300). Standard library only; talks to the
containers with `docker exec`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "molecule" / "logs" / "files" / "winston_emulator.py"


def sh(container: str, command: str) -> str:
    result = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{container}: {command!r} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def stored(collector: str, path: str, run: str) -> list[dict]:
    text = sh(collector, f'grep -h \'"run":"{run}"\' {path} || true')
    return [json.loads(line) for line in text.splitlines()]


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The logs scenario's containers: <WEBSTACK_RUN_ID, default molecule>-logs-shipper/-collector.
    run_id = os.environ.get("WEBSTACK_RUN_ID", "molecule")
    parser.add_argument("--shipper", default=f"{run_id}-logs-shipper")
    parser.add_argument("--collector", default=f"{run_id}-logs-collector")
    parser.add_argument("--app", default="sample-api")
    parser.add_argument("--environment", default="local")
    parser.add_argument("--apps-dir", default="/var/log/webstack/apps")
    parser.add_argument("--stored-dir", default="/var/log/webstack")
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()

    if "winston-emulator" not in sh(args.shipper, "ls /usr/local/bin"):
        subprocess.run(["docker", "cp", str(EMULATOR), f"{args.shipper}:/usr/local/bin/winston-emulator"], check=True)
    run = f"bench-{int(time.time())}"
    path = f"{args.stored_dir}/{args.environment}/{args.shipper}/{args.app}/combined.log"
    load = os.getloadavg()
    began = time.time()
    sh(args.shipper, f"winston-emulator --dir {args.apps_dir}/{args.app} --run {run} "
                     f"--count {args.lines} --rate {args.rate}")  # fmt: skip
    wrote = time.time() - began
    deadline = time.monotonic() + args.max_seconds
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = stored(args.collector, path, run)
        if len({r["seq"] for r in records}) >= args.lines:
            break
        time.sleep(1)
    seqs = [r["seq"] for r in records]
    delays = [(when(r["received"]) - when(r["timestamp"])) * 1000 for r in records]
    first = min(when(r["timestamp"]) for r in records) if records else began
    last = max(when(r["received"]) for r in records) if records else time.time()
    figures = {
        "lines": args.lines,
        "written_per_s": round(args.lines / wrote, 1),
        "stored_per_s": round(len(set(seqs)) / max(last - first, 1e-6), 1),
        "p50_ms": round(statistics.median(delays), 1) if delays else None,
        "p99_ms": round(percentile(delays, 0.99), 1) if delays else None,
        "max_ms": round(max(delays), 1) if delays else None,
        "lost": args.lines - len(set(seqs)),
        "duplicated": len(seqs) - len(set(seqs)),
        "loadavg_1m_at_start": round(load[0], 2),
    }
    print(json.dumps(figures))
    return 0 if figures["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
