#!/usr/bin/env python3
"""Backup and restore times of webstack-backup for a PostgreSQL database and a Redis dataset of stated sizes.

Runs on a host the backup role converged (default: the Molecule instance of ``molecule converge -s backup``,
reached with ``docker exec``), beside its own jobs:

* PostgreSQL: database ``bench`` with ``--pg-rows`` rows (default 200000) of an orders-like table
  (bigint id, text, numeric, timestamptz, a 64-character text column) and an index;
* Redis: a second redis-server on port 6390 of that host holding ``--redis-keys`` string keys
  (default 100000, ``--redis-value-bytes`` 100 bytes each) and 1000 hashes of 20 fields;

then ``webstack-backup run`` (dump + manifest + upload to the role's S3 repository) and
``webstack-backup restore --target scratch`` (fetch, restore, count and checksum, compare with the
manifest) of each, with a configuration that names only these two jobs. Printed: sizes and seconds.
Everything it made is removed afterwards (the snapshots stay in the repository, tagged job:bench-*).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time

PG_SETUP = """
DROP DATABASE IF EXISTS bench;
CREATE DATABASE bench;
\\c bench
CREATE TABLE orders (id bigint PRIMARY KEY, customer text, total numeric(12,2), placed timestamptz, ref text);
INSERT INTO orders SELECT g, 'customer ' || (g % 5000), (g % 100000) / 100.0,
  timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', md5(g::text) || md5((g + 1)::text)
  FROM generate_series(1, {rows}) g;
CREATE INDEX ON orders (customer);
ANALYZE orders;
"""


def sh(target: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", "exec", target, "bash", "-c", command], capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"bench: {command[:120]!r} failed ({proc.returncode}): {proc.stderr[-1500:]}{proc.stdout[-1500:]}")
    return proc


def loadavg() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def timed(target: str, command: str) -> tuple[float, dict]:
    start = time.monotonic()
    proc = sh(target, command)
    return time.monotonic() - start, json.loads(proc.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="backup-bookworm", help="container of a converged backup host")
    p.add_argument("--pg-rows", type=int, default=200000)
    p.add_argument("--redis-keys", type=int, default=100000)
    p.add_argument("--redis-value-bytes", type=int, default=100)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    t = args.target

    print(f"bench: preparing {args.pg_rows} PostgreSQL rows and {args.redis_keys} Redis keys on {t}", flush=True)
    sh(t, f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 <<'SQL'\n{PG_SETUP.format(rows=args.pg_rows)}\nSQL")
    pg_bytes = int(sh(t, "runuser -u postgres -- psql -XtAc \"SELECT pg_database_size('bench')\"").stdout)
    sh(
        t,
        "mkdir -p /root/bench-redis && redis-server --port 6390 --bind 127.0.0.1 --dir /root/bench-redis "
        "--save '' --appendonly no --daemonize yes --pidfile /root/bench-redis/pid",
    )
    value = "v" * args.redis_value_bytes
    fill = (
        f'for i in $(seq 1 {args.redis_keys}); do echo "SET key:$i {value}$i"; done'
        " | redis-cli -p 6390 --pipe >/dev/null;"
        " for h in $(seq 1 1000); do printf 'HSET hash:%s' $h;"
        " for f in $(seq 1 20); do printf ' f%s value-%s-%s' $f $h $f; done; echo; done"
        " | redis-cli -p 6390 --pipe >/dev/null"
    )
    sh(t, fill)
    redis_mem = sh(t, "redis-cli -p 6390 INFO memory | grep '^used_memory:' | cut -d: -f2").stdout.strip()
    redis_keys = int(sh(t, "redis-cli -p 6390 DBSIZE").stdout)
    config = (
        "python3 -c \"import json; c=json.load(open('/etc/webstack-backup/config.json'));"
        " c['jobs']={'bench-pg': {'engine': 'postgresql', 'database': 'bench'},"
        " 'bench-redis': {'engine': 'redis', 'host': '127.0.0.1', 'port': 6390}};"
        " json.dump(c, open('/root/bench.json', 'w'))\""
    )
    sh(t, config)
    figures: dict = {"load_average_before": loadavg()}
    try:
        for job in ("bench-pg", "bench-redis"):
            run_s, run = timed(t, f"webstack-backup --config /root/bench.json run {shlex.quote(job)}")
            restore_s, restore = timed(t, f"webstack-backup --config /root/bench.json restore {job} --target scratch")
            if not restore["verified"]:
                sys.exit(f"bench: the restore of {job} did not verify: {restore['differences']}")
            figures[job] = {
                "backup_seconds": round(run_s, 1),
                "dump_seconds": run["jobs"][0]["dump_seconds"],
                "upload_seconds": run["jobs"][0]["uploaded"][-1]["seconds"],
                "dump_bytes": run["jobs"][0]["dump_bytes"],
                "restore_verified_seconds": round(restore_s, 1),
                "restore_fetch_seconds": restore["fetch_seconds"],
            }
    finally:
        sh(t, "runuser -u postgres -- psql -XqAc 'DROP DATABASE IF EXISTS bench'", check=False)
        sh(t, "redis-cli -p 6390 shutdown nosave; rm -rf /root/bench-redis /root/bench.json", check=False)
    figures["load_average_after"] = loadavg()
    figures["postgresql"] = {"rows": args.pg_rows, "database_bytes": pg_bytes}
    figures["redis"] = {"keys": redis_keys, "used_memory_bytes": int(redis_mem)}

    mb = 1024 * 1024
    pg, rd = figures["bench-pg"], figures["bench-redis"]
    print(f"PostgreSQL: {args.pg_rows} rows, database {pg_bytes / mb:.1f} MiB, dump {pg['dump_bytes'] / mb:.1f} MiB")
    print(f"  backup {pg['backup_seconds']} s (dump+manifest {pg['dump_seconds']} s, upload {pg['upload_seconds']} s)")
    print(f"  restore to scratch + verify {pg['restore_verified_seconds']} s (fetch {pg['restore_fetch_seconds']} s)")
    print(f"Redis: {redis_keys} keys, used_memory {int(redis_mem) / mb:.1f} MiB, RDB {rd['dump_bytes'] / mb:.1f} MiB")
    print(f"  backup {rd['backup_seconds']} s (dump+manifest {rd['dump_seconds']} s, upload {rd['upload_seconds']} s)")
    print(f"  restore to scratch + verify {rd['restore_verified_seconds']} s (fetch {rd['restore_fetch_seconds']} s)")
    print(f"load average before/after: {figures['load_average_before']} / {figures['load_average_after']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
