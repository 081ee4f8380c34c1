#!/usr/bin/env python3
"""Write log lines the way the sample API's logger (apps/sample/api/src/logger.js) does.

winston's json format with the app's defaultMeta: one JSON object per line,
keys sorted, {"color","level","message","pid","service","timestamp","version",
...meta}; every line goes to combined.log, errors also to error.log; the
files are opened for append, and reopened by name on SIGHUP (as the API does
after logrotate renamed them). Runs as the app's uid.

    winston-emulator --dir /var/log/webstack/apps/sample-api --run steady --count 2000 --rate 500
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import signal
import sys
import time
from datetime import UTC, datetime

REOPEN = False


def _on_hup(_signum: int, _frame: object) -> None:
    global REOPEN
    REOPEN = True


def _open(directory: str) -> dict[str, int]:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    return {name: os.open(os.path.join(directory, f"{name}.log"), flags, 0o644) for name in ("combined", "error")}


def main() -> int:
    global REOPEN
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=500.0, help="lines per second (0: as fast as possible)")
    parser.add_argument("--user", default="sample-api")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--color", default="blue")
    args = parser.parse_args()

    pidfile = os.environ.get("WINSTON_EMULATOR_PIDFILE", f"/run/winston-emulator-{args.run}.pid")
    with open(pidfile, "w", encoding="ascii") as handle:
        handle.write(str(os.getpid()))
    user = pwd.getpwnam(args.user)
    if os.getuid() != user.pw_uid:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    signal.signal(signal.SIGHUP, _on_hup)

    files = _open(args.dir)
    start = time.monotonic()
    try:
        for seq in range(args.count):
            if REOPEN:
                REOPEN = False
                # As the API: the renamed files are complete and closed
                # before the new ones exist.
                for fd in files.values():
                    os.close(fd)
                files = _open(args.dir)
            level = "error" if seq % 10 == 9 else "info"
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            record = {
                "color": args.color,
                "level": level,
                "message": "request failed" if level == "error" else "request",
                "method": "GET",
                "path": "/api/items",
                "pid": os.getpid(),
                "run": args.run,
                "seq": seq,
                "service": "sample-api",
                "status": 500 if level == "error" else 200,
                "timestamp": now,
                "version": args.version,
            }
            line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
            os.write(files["combined"], line)
            if level == "error":
                os.write(files["error"], line)
            if args.rate > 0:
                delay = start + (seq + 1) / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    finally:
        for fd in files.values():
            os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
