#!/usr/bin/python3
"""Backups of PostgreSQL, Redis and MongoDB to a restic repository, and proven restores.

Installed by webstack.deploy.backup as /usr/local/sbin/webstack-backup; systemd timers run it.

  webstack-backup run JOB|--all [--label L]   dump, write the manifest, upload (retried); a dump
                                              that cannot be uploaded stays in the spool directory
  webstack-backup flush [JOB]                 upload what the spool directory holds
  webstack-backup forget                      apply the retention policy and prune the repository
  webstack-backup check                       restic check --read-data-subset
  webstack-backup init                        create the repository unless it exists (probe first)
  webstack-backup snapshots [--job JOB]       the job's snapshots, newest last
  webstack-backup restore JOB [--snapshot ID|latest] [--label L] [--target scratch|live]
                              [--yes-overwrite-live] [--keep-scratch] [--drop-previous]
                                              restore, then compare counts and checksums with the
                                              manifest written at backup time; non-zero on mismatch
  webstack-backup check-config FILE           validate a configuration file

Every command prints one JSON object on stdout. Exit codes: 0 done, 1 failed (nothing uploaded,
or a restore that does not match its manifest), 2 bad arguments or configuration, 3 dumped but
not uploaded (kept in the spool directory; the next run uploads it).

A dump is written to a file and checked before restic sees it: no pipe, so a dump that fails
can never become a "successful" snapshot (restic < 0.17 saves a snapshot and exits 0 when the
program feeding its stdin fails).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "/etc/webstack-backup/config.json"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
ENGINES = ("postgresql", "redis", "mongodb")
EXTENSIONS = {"postgresql": "pgdump", "redis": "rdb", "mongodb": "archive.gz"}
JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# restic cat config: messages that mean "no repository here yet" (as opposed to a network error
# or a wrong password, where init must not run).
MISSING_REPOSITORY = re.compile(
    r"(specified bucket does not exist|specified key does not exist|no such file or directory)", re.I
)
PG_MANIFEST_MARK = "WEBSTACK-BACKUP-MANIFEST "
# Where each tool comes from (the backup role's package lists).
TOOL_PACKAGES = {
    "mongodump": "mongodb-database-tools from MongoDB's repository, backup_mongodb_packages",
    "mongorestore": "mongodb-database-tools from MongoDB's repository, backup_mongodb_packages",
    "redis-cli": "Debian's redis-tools, backup_redis_packages",
    "redis-server": "Debian's redis-server, backup_redis_packages",
    "restic": "Debian's restic, backup_packages",
}
PG_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)
PG_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""
# Order-independent checksum of a table: the sum of the first 60 bits of each row's md5.
PG_TABLE_SUMS = (
    "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0)::text FROM ONLY {} AS t"
)


class Failure(Exception):
    """A step failed; the message says what, and what to do."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- pure decisions (unit-tested)


def retry_delays(retries: int, delay: float, max_delay: float) -> list[float]:
    """Seconds to wait before each retry: doubling from ``delay``, capped at ``max_delay``."""
    return [min(delay * (2**i), max_delay) for i in range(max(retries, 0))]


def restic_exit_ok(rc: int) -> bool:
    """restic backup: 0 is a complete snapshot; 3 is a snapshot missing unreadable files; the rest failed."""
    return rc == 0


def is_missing_repository(stderr: str) -> bool:
    return bool(MISSING_REPOSITORY.search(stderr)) and "wrong password" not in stderr


def env_name(job: str) -> str:
    """Environment variable holding a job's database password."""
    return "WEBSTACK_BACKUP_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", job.upper())


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (values may be single- or double-quoted)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if line.split("=", 1)[1].strip()[0] == '"':
                value = re.sub(r'\\(["\\$`])', r"\1", value)
        env[key.strip()] = value
    return env


def validate_config(config: dict) -> list[str]:
    """What is wrong with a configuration (empty when it is usable)."""
    errors = []
    for key in ("host", "repository", "spool_dir", "jobs", "retention", "upload"):
        if key not in config:
            errors.append(f"missing key {key!r}")
    if errors:
        return errors
    if not str(config["repository"]).startswith("s3:"):
        errors.append(f"repository must be restic's s3:<endpoint>/<bucket>[/<prefix>], found {config['repository']!r}")
    for name, value in config["retention"].items():
        if not isinstance(value, int) and name != "keep_within":
            errors.append(f"retention {name} must be an integer, found {value!r}")
        elif isinstance(value, int) and value < 0:
            errors.append(f"retention {name} must be 0 or more, found {value}")
    for name, job in config["jobs"].items():
        if not JOB_NAME.match(name):
            errors.append(f"job name {name!r} must match {JOB_NAME.pattern}")
        if job.get("engine") not in ENGINES:
            errors.append(f"job {name}: engine must be one of {', '.join(ENGINES)}, found {job.get('engine')!r}")
        if job.get("engine") == "postgresql" and not job.get("database"):
            errors.append(f"job {name}: a postgresql job needs database")
        if job.get("engine") == "mongodb":
            errors.extend(mongodb_job_errors(name, job))
    return errors


def forget_args(retention: dict) -> list[str]:
    """restic forget options of a retention policy (0 disables a rule)."""
    args = []
    for rule in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
        if int(retention.get(rule, 0)) > 0:
            args += ["--" + rule.replace("_", "-"), str(int(retention[rule]))]
    if retention.get("keep_within"):
        args += ["--keep-within", str(retention["keep_within"])]
    if not args:
        raise Failure("the retention policy keeps nothing: set at least one keep_* rule", 2)
    return args


def compare_manifests(expected: dict, found: dict) -> list[str]:
    """Differences between the data a manifest recorded and what a restored copy holds."""
    diffs = []
    want, have = expected.get("data", {}), found.get("data", {})
    if expected.get("engine") == "postgresql":
        wt, ht = want.get("tables", {}), have.get("tables", {})
        for table in sorted(set(wt) | set(ht)):
            if table not in ht:
                diffs.append(f"table {table}: missing from the restored database")
            elif table not in wt:
                diffs.append(f"table {table}: in the restored database but not in the backup")
            else:
                for field in ("rows", "checksum"):
                    if wt[table].get(field) != ht[table].get(field):
                        diffs.append(
                            f"table {table}: {field} {ht[table].get(field)} != {wt[table].get(field)} expected"
                        )
    elif expected.get("engine") == "redis":
        wd, hd = want.get("dbs", {}), have.get("dbs", {})
        for db in sorted(set(wd) | set(hd), key=lambda d: int(d)):
            w = wd.get(db, {"keys": 0, "checksum": None})
            h = hd.get(db, {"keys": 0, "checksum": None})
            for field in ("keys", "checksum"):
                if w.get(field) != h.get(field):
                    diffs.append(f"db {db}: {field} {h.get(field)} != {w.get(field)} expected")
    elif expected.get("engine") == "mongodb":
        if want.get("documents") != have.get("documents"):
            diffs.append(f"documents {have.get('documents')} != {want.get('documents')} expected")
    else:
        diffs.append(f"unknown engine {expected.get('engine')!r} in the manifest")
    return diffs


def redis_value_digest(kind: str, key: bytes, value: Any) -> int:
    """sha256 of one key, its type and its value in a canonical form, as an integer."""
    h = hashlib.sha256()
    h.update(kind.encode() + b"\0" + key + b"\0")
    if kind == "string" or kind == "other":
        h.update(value or b"")
    elif kind == "list":
        for item in value:
            h.update(len(item).to_bytes(8, "big") + item)
    elif kind == "set":
        for item in sorted(value):
            h.update(len(item).to_bytes(8, "big") + item)
    elif kind == "hash":
        for field, item in sorted(value.items()):
            h.update(len(field).to_bytes(8, "big") + field + len(item).to_bytes(8, "big") + item)
    elif kind == "zset":
        for member, score in value:
            h.update(len(member).to_bytes(8, "big") + member + repr(float(score)).encode())
    elif kind == "stream":
        for entry_id, fields in value:
            h.update(entry_id + b"\0")
            for field, item in sorted(fields.items()):
                h.update(len(field).to_bytes(8, "big") + field + len(item).to_bytes(8, "big") + item)
    else:
        raise ValueError(f"unknown redis type {kind}")
    return int.from_bytes(h.digest(), "big")


def combine_digests(digests: list[int] | Any) -> str:
    """Order-independent checksum of many digests (their sum modulo 2**256), as hex."""
    return f"{sum(digests) % (1 << 256):064x}"


def pg_checksum(tables: dict) -> str:
    """One checksum of a database: sha256 over its tables' names, counts and checksums, sorted."""
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(f"{name}\0{tables[name]['rows']}\0{tables[name]['checksum']}\n".encode())
    return h.hexdigest()


def mongodb_uri_parts(uri: str) -> tuple[str, dict[str, str]]:
    """The database a MongoDB connection string names (its path, may be empty) and its options (lower-case keys)."""
    hosts_and_path, _, query = re.sub(r"^mongodb(\+srv)?://", "", uri).partition("?")
    database = hosts_and_path.partition("/")[2]
    options = {k.lower(): v[-1] for k, v in urllib.parse.parse_qs(query).items()}
    return urllib.parse.unquote(database), options


def mongodb_oplog(job: dict) -> bool:
    """Whether a job's dump carries the oplog: the job's ``oplog``, else true where the uri names a replica set."""
    if job.get("oplog") is not None:
        return bool(job["oplog"])
    database, options = mongodb_uri_parts(job.get("uri", ""))
    return bool(options.get("replicaset")) and not database


def mongodb_job_errors(name: str, job: dict) -> list[str]:
    """What mongodump would refuse in a job (mongo-tools: --oplog only on a dump of the whole instance)."""
    uri = str(job.get("uri", ""))
    if not re.match(r"^mongodb(\+srv)?://", uri):
        return [f"job {name}: a mongodb job needs uri (mongodb://host:port/?replicaSet=rs0)"]
    if re.match(r"^mongodb(\+srv)?://[^/@]*:[^/@]*@", uri):
        return [f"job {name}: the uri holds a password; put it in the job's password"]
    database, _ = mongodb_uri_parts(uri)
    if job.get("oplog") and database:
        return [
            f"job {name}: oplog needs a dump of the whole instance, but the uri names the database {database!r} "
            "(mongodump refuses --oplog with a database); name the authentication database with ?authSource= instead"
        ]
    return []


def mongodump_command(job: dict, out: Path, config_file: str | None) -> list[str]:
    """mongodump of a job into one gzip archive; the password only in the --config file."""
    cmd = ["mongodump", f"--uri={job['uri']}", f"--archive={out}", "--gzip"]
    if config_file:
        cmd.append(f"--config={config_file}")
    if mongodb_oplog(job):
        cmd.append("--oplog")
    return cmd


def mongorestore_command(
    job: dict, dump: Path, config_file: str | None, oplog: bool, scratch_suffix: str | None
) -> list[str]:
    """mongorestore of an archive: over the live databases (--drop, the oplog replayed when the dump has it), or
    into <db>_<suffix> copies (mongorestore refuses --oplogReplay with renamed namespaces: not replayed there)."""
    cmd = ["mongorestore", f"--uri={job['uri']}", f"--archive={dump}", "--gzip", "--drop"]
    if config_file:
        cmd.append(f"--config={config_file}")
    if scratch_suffix:
        cmd += ["--nsFrom=$db$.$coll$", f"--nsTo=$db$_{scratch_suffix}.$coll$"]
    elif oplog:
        cmd.append("--oplogReplay")
    return cmd


def run_tool(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run that turns a missing program into a Failure naming the package that ships it."""
    try:
        return subprocess.run(cmd, check=False, **kwargs)
    except FileNotFoundError:
        package = TOOL_PACKAGES.get(cmd[0], "its package")
        raise Failure(f"{cmd[0]} is not installed on this host ({package})") from None


def mongodump_counts(stderr: str) -> dict[str, int]:
    """Documents per collection from mongodump's log ("done dumping db.coll (N documents)")."""
    counts = {}
    for m in re.finditer(r"done dumping (\S+) \((\d+) documents?\)", stderr):
        counts[m.group(1)] = int(m.group(2))
    return counts


def mongorestore_count(stderr: str) -> int | None:
    m = re.search(r"(\d+) document\(s\) restored successfully", stderr)
    return int(m.group(1)) if m else None


def pick_snapshot(snapshots: list[dict], snapshot: str, label: str | None) -> dict:
    """The snapshot a restore asked for: an id (prefix), or the newest (with a label, the newest so labelled)."""
    if label:
        snapshots = [s for s in snapshots if f"label:{label}" in (s.get("tags") or [])]
    if not snapshots:
        raise Failure(
            "no snapshot found" + (f" labelled {label}" if label else "") + ": see `webstack-backup snapshots`"
        )
    if snapshot in ("", "latest"):
        return max(snapshots, key=lambda s: s["time"])
    found = [s for s in snapshots if s["id"].startswith(snapshot) or s.get("short_id") == snapshot]
    if len(found) != 1:
        raise Failure(f"snapshot {snapshot!r} matches {len(found)} snapshots of this job; expected exactly one")
    return found[0]


def utc_stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")


def stamp_to_restic_time(stamp: str) -> str:
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- running things


class Log:
    """Lines on stderr (the journal, under systemd) and, when run by hand, syslog too."""

    def __init__(self) -> None:
        self.syslog = None
        if not os.environ.get("INVOCATION_ID"):
            with contextlib.suppress(ImportError):
                import syslog

                syslog.openlog("webstack-backup", syslog.LOG_PID, syslog.LOG_DAEMON)
                self.syslog = syslog

    def __call__(self, message: str, error: bool = False) -> None:
        print(("ERROR: " if error else "") + message, file=sys.stderr, flush=True)
        if self.syslog:
            self.syslog.syslog(self.syslog.LOG_ERR if error else self.syslog.LOG_INFO, message)


log = Log()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Backup:
    def __init__(self, config: dict, env: dict[str, str]) -> None:
        self.config = config
        self.env = env
        self.spool = Path(config["spool_dir"])
        self.state = Path(config.get("state_dir", "/var/lib/webstack-backup/state"))

    # -- restic
    def restic(self, *args: str, cwd: Path | None = None, timeout: float | None = None, stdout=None):
        cmd = [self.config.get("restic", "restic"), "--no-cache", *self.config.get("restic_options", []), *args]
        return run_tool(
            cmd,
            cwd=cwd,
            env=self.env,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=stdout is None,
            timeout=timeout,
        )

    def restic_json(self, *args: str) -> Any:
        proc = self.restic(*args, "--json")
        if proc.returncode != 0:
            raise Failure(f"restic {args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return json.loads(proc.stdout or "null")

    def init(self) -> dict:
        probe = self.restic("cat", "config")
        if probe.returncode == 0:
            return {"changed": False, "repository": self.config["repository"]}
        if not is_missing_repository(probe.stderr):
            raise Failure(f"cannot open the repository {self.config['repository']}: {probe.stderr.strip()[-800:]}")
        made = self.restic("init")
        if made.returncode != 0:
            raise Failure(f"restic init failed (exit {made.returncode}): {made.stderr.strip()[-800:]}")
        log(f"created the restic repository {self.config['repository']}")
        return {"changed": True, "repository": self.config["repository"]}

    def snapshots(self, job: str | None, host: str | None = None) -> list[dict]:
        args = ["snapshots", "--host", host or self.config["host"], "--tag", "webstack"]
        if job:
            args = ["snapshots", "--host", host or self.config["host"], "--tag", f"webstack,job:{job}"]
        return sorted(self.restic_json(*args) or [], key=lambda s: s["time"])

    # -- alerts
    def alert(self, job: str, event: str, message: str) -> list[str]:
        """Run the alert command and publish to SNS; returns what was notified (failures are logged)."""
        alert = self.config.get("alert", {})
        done = []
        text = f"webstack-backup on {self.config['host']}: {event} {job}: {message}"
        if alert.get("command"):
            env = dict(
                self.env,
                WEBSTACK_BACKUP_HOST=self.config["host"],
                WEBSTACK_BACKUP_JOB=job,
                WEBSTACK_BACKUP_EVENT=event,
                WEBSTACK_BACKUP_MESSAGE=message,
            )
            for secret in [
                k for k in env if k.startswith(("RESTIC_PASSWORD", "WEBSTACK_BACKUP_PASSWORD", "AWS_SECRET"))
            ]:
                env.pop(secret)
            try:
                proc = subprocess.run(
                    alert["command"], shell=True, env=env, timeout=60, check=False, capture_output=True
                )
                if proc.returncode == 0:
                    done.append("command")
                else:
                    log(f"alert command exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}", True)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log(f"alert command failed: {exc}", True)
        if alert.get("sns_topic_arn"):
            try:
                import boto3

                # The env file's credentials (also when run by hand, outside the unit's EnvironmentFile=);
                # none there: boto3's own chain (the instance role).
                session = boto3.session.Session(
                    aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID") or None,
                    aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY") or None,
                    aws_session_token=self.env.get("AWS_SESSION_TOKEN") or None,
                    region_name=alert.get("sns_region") or self.env.get("AWS_DEFAULT_REGION") or None,
                )
                kwargs = {"endpoint_url": alert["sns_endpoint_url"]} if alert.get("sns_endpoint_url") else {}
                session.client("sns", **kwargs).publish(
                    TopicArn=alert["sns_topic_arn"], Subject=f"backup {event}: {job}"[:99], Message=text
                )
                done.append("sns")
            except Exception as exc:  # every failure to alert is logged, never raised
                log(f"SNS alert to {alert['sns_topic_arn']} failed: {exc}", True)
        return done

    # -- state
    def record(self, job: str, **fields: Any) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / f"{job}.json"
        data = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
        data.update(fields)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)

    @contextlib.contextmanager
    def lock(self, job: str, wait: float = 3600):
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.spool / f".{job}.lock").open("w") as handle:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Failure(f"job {job}: another run holds its lock for more than {wait:.0f}s") from None
                    time.sleep(1)
            yield

    # -- backup
    def job(self, name: str) -> dict:
        if name not in self.config["jobs"]:
            raise Failure(f"no job {name!r}; configured: {', '.join(sorted(self.config['jobs'])) or 'none'}", 2)
        return self.config["jobs"][name]

    def pending(self, job: str) -> list[Path]:
        base = self.spool / job
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.is_dir() and (p / MANIFEST).is_file())

    def run(self, name: str, label: str | None) -> dict:
        job = self.job(name)
        result: dict[str, Any] = {"job": name, "engine": job["engine"], "uploaded": [], "pending": []}
        with self.lock(name):
            try:
                entry = self.dump(name, job, label)
            except Failure as exc:
                self.record(name, last_failure=utc_stamp(), last_error=str(exc))
                result["notified"] = self.alert(name, "dump failed", str(exc))
                raise
            dumped = json.loads((entry / MANIFEST).read_text())
            result.update(dumped=entry.name, dump_bytes=dumped["dump"]["bytes"], dump_seconds=dumped["dump_seconds"])
            failures = []
            for pending in self.pending(name):
                try:
                    result["uploaded"].append(self.upload(name, job, pending))
                except Failure as exc:
                    failures.append(str(exc))
                    result["pending"].append(pending.name)
            if failures:
                kept = f"{len(result['pending'])} dump(s) kept in {self.spool / name}"
                message = f"{kept} until an upload succeeds: {failures[-1]}"
                self.record(name, last_failure=utc_stamp(), last_error=message, pending=result["pending"])
                result["notified"] = self.alert(name, "upload failed", message)
                raise Failure(message, 3)
            self.record(name, last_success=utc_stamp(), last_snapshot=result["uploaded"][-1]["snapshot"], pending=[])
        return result

    def flush(self, name: str) -> dict:
        job = self.job(name)
        uploaded, pending, failures = [], [], []
        with self.lock(name):
            for entry in self.pending(name):
                try:
                    uploaded.append(self.upload(name, job, entry))
                except Failure as exc:
                    failures.append(str(exc))
                    pending.append(entry.name)
        if failures:
            self.alert(name, "upload failed", failures[-1])
            raise Failure(f"{len(pending)} dump(s) of {name} still not uploaded: {failures[-1]}", 3)
        return {"job": name, "uploaded": uploaded, "pending": pending}

    def dump(self, name: str, job: dict, label: str | None) -> Path:
        stamp = utc_stamp()
        entry = self.spool / name / stamp
        entry.mkdir(parents=True, mode=0o700)
        target = entry / f"{name}.{EXTENSIONS[job['engine']]}"
        partial = target.with_name(target.name + ".partial")
        started = time.monotonic()
        try:
            data = getattr(self, f"dump_{job['engine']}")(name, job, partial)
            partial.replace(target)
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)
            raise
        manifest = {
            "format": MANIFEST_FORMAT,
            "job": name,
            "engine": job["engine"],
            "host": self.config["host"],
            "created": stamp,
            "label": label or "",
            "source": {k: job[k] for k in ("database", "host", "port", "user") if job.get(k) not in (None, "")},
            "dump": {"file": target.name, "bytes": target.stat().st_size, "sha256": sha256_file(target)},
            "data": data,
            "dump_seconds": round(time.monotonic() - started, 3),
        }
        (entry / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        log(f"{name}: dumped {manifest['dump']['bytes']} bytes in {manifest['dump_seconds']}s ({entry})")
        return entry

    def upload(self, name: str, job: dict, entry: Path) -> dict:
        """restic backup of one spooled dump (retried with backoff); the spool copy goes once it is in."""
        manifest = json.loads((entry / MANIFEST).read_text())
        files = [manifest["dump"]["file"], MANIFEST]
        # A stable path per job: restic groups snapshots by host and paths for retention.
        stage = self.spool / ".upload" / name
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True, mode=0o700)
        for f in files:
            os.link(entry / f, stage / f)
        tags = ["webstack", f"job:{name}", f"engine:{job['engine']}"]
        if manifest.get("label"):
            tags += ["labelled", f"label:{manifest['label']}"]
        args = ["backup", "--json", "--host", self.config["host"], "--time", stamp_to_restic_time(manifest["created"])]
        for tag in tags:
            args += ["--tag", tag]
        upload = self.config["upload"]
        delays = retry_delays(
            int(upload.get("retries", 5)), float(upload.get("delay", 30)), float(upload.get("max_delay", 600))
        )
        error = ""
        started = time.monotonic()
        try:
            for attempt in range(len(delays) + 1):
                try:
                    proc = self.restic(*args, *files, cwd=stage, timeout=float(upload.get("timeout", 3600)))
                    rc, stderr, stdout = proc.returncode, proc.stderr, proc.stdout
                except subprocess.TimeoutExpired:
                    rc, stderr, stdout = -1, f"restic backup did not finish within {upload.get('timeout')}s", ""
                if restic_exit_ok(rc):
                    summary = [json.loads(line) for line in stdout.splitlines() if '"summary"' in line]
                    snapshot = summary[-1]["snapshot_id"] if summary else ""
                    shutil.rmtree(entry)
                    seconds = round(time.monotonic() - started, 3)
                    log(f"{name}: uploaded {entry.name} as snapshot {snapshot} in {seconds}s (attempt {attempt + 1})")
                    return {"entry": entry.name, "snapshot": snapshot, "attempts": attempt + 1, "seconds": seconds}
                error = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {rc}"
                log(f"{name}: upload of {entry.name} failed (attempt {attempt + 1}, exit {rc}): {error}", True)
                if attempt < len(delays):
                    time.sleep(delays[attempt])
                    self.restic("unlock")  # locks of a killed run; live ones stay
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        raise Failure(f"upload of {name} {entry.name} failed after {len(delays) + 1} attempts: {error}", 3)

    # -- engines: dump
    def pg_env(self, job: dict) -> tuple[dict[str, str], list[str]]:
        """libpq environment and the command prefix (local servers: as the postgres user, over the socket)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "RESTIC", "AWS", "WEBSTACK_BACKUP_PASS"))}
        env["PGDATABASE"] = job["database"]
        env["PGCONNECT_TIMEOUT"] = str(job.get("connect_timeout", 30))
        if job.get("host"):
            env.update(PGHOST=job["host"], PGPORT=str(job.get("port", 5432)), PGUSER=job.get("user", "postgres"))
            env["PGSSLMODE"] = job.get("sslmode", "prefer")
            if self.env.get(env_name(job["name"])):
                env["PGPASSWORD"] = self.env[env_name(job["name"])]
            return env, []
        if job.get("port"):
            env["PGPORT"] = str(job["port"])
        return env, ["runuser", "-u", job.get("os_user", "postgres"), "--"]

    def dump_postgresql(self, name: str, job: dict, out: Path) -> dict:
        env, prefix = self.pg_env(dict(job, name=name))
        with out.open("wb") as handle:
            os.chmod(out, 0o600)
            proc = subprocess.run(
                [*prefix, sys.executable, os.path.abspath(__file__), "pg-dump"],
                stdout=handle,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                check=False,
            )
        marks = [line for line in proc.stderr.splitlines() if line.startswith(PG_MANIFEST_MARK)]
        if proc.returncode != 0 or not marks:
            raise Failure(f"pg_dump of {job['database']} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return json.loads(marks[-1][len(PG_MANIFEST_MARK) :])

    def dump_redis(self, name: str, job: dict, out: Path) -> dict:
        env = dict(os.environ)
        if self.env.get(env_name(name)):
            env["REDISCLI_AUTH"] = self.env[env_name(name)]
        cmd = ["redis-cli", "--no-auth-warning", "-h", job.get("host") or "127.0.0.1", "-p", str(job.get("port", 6379))]
        if job.get("user"):
            cmd += ["--user", job["user"]]
        if job.get("tls"):
            cmd += ["--tls"]
        proc = run_tool([*cmd, "--rdb", str(out)], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            raise Failure(
                f"redis-cli --rdb failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        os.chmod(out, 0o600)
        # The manifest describes the RDB itself: a throwaway server loads it (which proves it loads).
        with scratch_redis(out, self.spool) as client:
            return redis_manifest(client)

    def dump_mongodb(self, name: str, job: dict, out: Path) -> dict:
        oplog = mongodb_oplog(job)
        with mongo_config(self.env.get(env_name(name), "")) as cfg:
            proc = run_tool(mongodump_command(job, out, cfg), capture_output=True, text=True)
        if proc.returncode != 0:
            raise Failure(f"mongodump failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        if not out.is_file():
            raise Failure(f"mongodump exited 0 but wrote no archive at {out}")
        os.chmod(out, 0o600)
        counts = mongodump_counts(proc.stderr)
        return {"collections": counts, "documents": sum(counts.values()), "oplog": oplog}

    # -- retention and checks
    def forget(self) -> dict:
        args = ["forget", "--host", self.config["host"], "--tag", "webstack", "--group-by", "host,paths"]
        args += forget_args(self.config["retention"])
        if self.config.get("prune", True):
            args.append("--prune")
        proc = self.restic(*args, "--json")
        if proc.returncode != 0:
            self.alert("retention", "forget failed", proc.stderr.strip()[-500:])
            raise Failure(f"restic forget failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        groups = []
        for line in proc.stdout.splitlines():
            # forget's --json answer is one array; prune prints progress lines like "[0:00] 100.00%".
            try:
                parsed = json.loads(line) if line.startswith("[{") else None
            except ValueError:
                parsed = None
            if parsed:
                for group in parsed:
                    groups.append(
                        {
                            "paths": group.get("paths"),
                            "keep": len(group.get("keep") or []),
                            "remove": len(group.get("remove") or []),
                        }
                    )
        log(f"retention applied: {sum(g['remove'] for g in groups)} snapshot(s) removed")
        return {"groups": groups}

    def check(self) -> dict:
        subset = str(self.config.get("check_read_data_subset", "5%"))
        args = ["check"] + (["--read-data-subset", subset] if subset else [])
        proc = self.restic(*args)
        if proc.returncode != 0:
            self.alert("repository", "check failed", proc.stderr.strip()[-500:])
            raise Failure(f"restic check failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return {"checked": True, "read_data_subset": subset}

    # -- restore
    def fetch(self, snapshot: dict, entry: Path) -> dict:
        """The snapshot's manifest and dump, the dump's checksum compared with the manifest's."""
        sid = snapshot["id"]
        proc = self.restic("dump", sid, "/" + MANIFEST)
        if proc.returncode != 0:
            raise Failure(f"restic dump {sid[:8]} /{MANIFEST} failed: {proc.stderr.strip()[-500:]}")
        manifest = json.loads(proc.stdout)
        target = entry / manifest["dump"]["file"]
        with target.open("wb") as handle:
            proc = self.restic("dump", sid, "/" + manifest["dump"]["file"], stdout=handle)
        if proc.returncode != 0:
            raise Failure(f"restic dump {sid[:8]} failed: {proc.stderr.decode(errors='replace').strip()[-500:]}")
        digest = sha256_file(target)
        if digest != manifest["dump"]["sha256"]:
            raise Failure(
                f"snapshot {sid[:8]}: the dump's sha256 {digest} is not the manifest's {manifest['dump']['sha256']}"
            )
        return manifest

    def restore(self, name: str, args: argparse.Namespace) -> dict:
        job = self.job(name)
        if args.target == "live" and not args.yes_overwrite_live:
            raise Failure(
                f"restoring {name} over the live {job['engine']} data needs --yes-overwrite-live "
                "(restore.yml: -e restore_confirm_overwrite=<job name>)",
                2,
            )
        snapshot = pick_snapshot(self.snapshots(name, args.from_host), args.snapshot, args.label)
        work = Path(tempfile.mkdtemp(prefix=f".restore-{name}-", dir=self.spool_base()))
        started = time.monotonic()
        try:
            manifest = self.fetch(snapshot, work)
            fetched = time.monotonic() - started
            if manifest["engine"] != job["engine"]:
                raise Failure(
                    f"snapshot {snapshot['id'][:8]} holds a {manifest['engine']} dump, job {name} is {job['engine']}"
                )
            outcome = getattr(self, f"restore_{job['engine']}")(
                name, job, manifest, work / manifest["dump"]["file"], args
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        diffs = compare_manifests(manifest, outcome["found"])
        result = {
            "job": name,
            "engine": job["engine"],
            "snapshot": snapshot["id"][:8],
            "snapshot_time": snapshot["time"],
            "label": manifest.get("label", ""),
            "target": args.target,
            "verified": not diffs,
            "differences": diffs,
            "expected": manifest["data"],
            "found": outcome["found"]["data"],
            "fetch_seconds": round(fetched, 3),
            "seconds": round(time.monotonic() - started, 3),
            **{k: v for k, v in outcome.items() if k != "found"},
        }
        if diffs:
            self.alert(name, "restore verification failed", "; ".join(diffs[:5]))
        return result

    def spool_base(self) -> Path:
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.spool

    def restore_postgresql(self, name: str, job: dict, manifest: dict, dump: Path, args) -> dict:
        env, prefix = self.pg_env(dict(job, name=name))
        live = job["database"]
        scratch = args.scratch_name or f"{live}_restore_{utc_stamp().lower()}"
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", scratch):
            raise Failure(f"scratch database name {scratch!r}: expected letters, digits and _ (at most 63)", 2)
        admin = dict(env, PGDATABASE=job.get("maintenance_database", "postgres"))
        owner = manifest["data"].get("owner") or ""

        def psql(sql: str, database_env=admin) -> str:
            proc = subprocess.run(
                [*prefix, "psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
                env=database_env,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise Failure(f"psql failed: {proc.stderr.strip()[-500:]} (SQL: {sql})")
            return proc.stdout.strip()

        psql(f'CREATE DATABASE "{scratch}"' + (f' OWNER "{owner}"' if owner else "") + " TEMPLATE template0")
        # pg_restore reads the dump on stdin: the postgres user cannot read the root-only spool.
        with dump.open("rb") as handle:
            proc = subprocess.run(
                [*prefix, "pg_restore", "--exit-on-error", "--single-transaction", "--no-password", "-d", scratch],
                stdin=handle,
                env=dict(env, PGDATABASE=scratch),
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            psql(f'DROP DATABASE IF EXISTS "{scratch}"')
            raise Failure(f"pg_restore into {scratch} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        found = {"engine": "postgresql", "data": pg_manifest_of(prefix, dict(env, PGDATABASE=scratch))}
        outcome: dict[str, Any] = {"found": found, "database": scratch}
        if compare_manifests(manifest, found):
            outcome["kept_for_inspection"] = scratch
            return outcome
        if args.target == "scratch":
            if not args.keep_scratch:
                psql(f'DROP DATABASE "{scratch}"')
                outcome["database"] = None
            return outcome
        # Live: the verified copy takes the live database's name; the old one is kept (or dropped).
        previous = f"{live}_before_restore_{utc_stamp().lower()}"[:63]
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()"
        )
        exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{live}'")
        if exists:
            psql(f'ALTER DATABASE "{live}" WITH ALLOW_CONNECTIONS false; {terminate.format(live)}')
            psql(f'ALTER DATABASE "{live}" RENAME TO "{previous}"')
        psql(f'ALTER DATABASE "{scratch}" RENAME TO "{live}"')
        if exists:
            psql(f'ALTER DATABASE "{previous}" WITH ALLOW_CONNECTIONS true')
            if args.drop_previous:
                psql(f'DROP DATABASE "{previous}"')
            else:
                outcome["previous_database"] = previous
        outcome["database"] = live
        found["data"] = pg_manifest_of(prefix, dict(env, PGDATABASE=live))
        return outcome

    def restore_redis(self, name: str, job: dict, manifest: dict, dump: Path, args) -> dict:
        with scratch_redis(dump, self.spool) as source:
            loaded = {"engine": "redis", "data": redis_manifest(source)}
            if args.target == "scratch" or compare_manifests(manifest, loaded):
                return {"found": loaded, "instance": "a throwaway redis-server loaded from the snapshot's RDB"}
            import redis

            target = redis.Redis(
                host=job.get("host") or "127.0.0.1",
                port=int(job.get("port", 6379)),
                username=job.get("user") or None,
                password=self.env.get(env_name(name)) or None,
                ssl=bool(job.get("tls")),
                socket_timeout=60,
            )
            restored = redis_copy(source, target)
            found = {"engine": "redis", "data": redis_manifest(target)}
        return {
            "found": found,
            "instance": f"{job.get('host') or '127.0.0.1'}:{job.get('port', 6379)}",
            "keys_restored": restored,
        }

    def restore_mongodb(self, name: str, job: dict, manifest: dict, dump: Path, args) -> dict:
        oplog = bool(manifest["data"].get("oplog", job.get("oplog")))
        suffix = None
        if args.target == "scratch":
            suffix = args.scratch_name or "restore_" + utc_stamp().lower()
        with mongo_config(self.env.get(env_name(name), "")) as cfg:
            proc = run_tool(mongorestore_command(job, dump, cfg, oplog, suffix), capture_output=True, text=True)
        if proc.returncode != 0:
            raise Failure(f"mongorestore failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return {
            "found": {"engine": "mongodb", "data": {"documents": mongorestore_count(proc.stderr)}},
            "oplog_replayed": oplog and suffix is None,
        }


# ---------------------------------------------------------------- engine helpers


def pg_manifest(conn) -> dict:
    """Row counts and checksums of every table, in the connection's current transaction."""
    cur = conn.cursor()
    cur.execute(PG_TABLES)
    tables = {}
    for schema, table in cur.fetchall():
        ident = '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))
        cur.execute(PG_TABLE_SUMS.format(ident))
        rows, checksum = cur.fetchone()
        tables[f"{schema}.{table}"] = {"rows": int(rows), "checksum": checksum}
    cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
    owner = cur.fetchone()[0]
    return {"tables": tables, "checksum": pg_checksum(tables), "owner": owner}


def pg_connect(snapshot: bool = False):
    """A connection from the PG* environment with fixed output settings (the checksums depend on them)."""
    import psycopg2
    import psycopg2.extensions

    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    for statement in PG_SESSION:
        cur.execute(statement)
    conn.autocommit = False
    if snapshot:
        conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
    return conn


def pg_dump_helper() -> int:
    """As the database user: export a snapshot, pg_dump it to stdout, count and checksum in that same snapshot."""
    conn = pg_connect(snapshot=True)
    cur = conn.cursor()
    cur.execute("SELECT pg_export_snapshot()")
    snapshot = cur.fetchone()[0]
    proc = subprocess.run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-password"], check=False)
    if proc.returncode != 0:
        print(f"pg_dump exited {proc.returncode}", file=sys.stderr)
        return 1
    manifest = pg_manifest(conn)
    conn.rollback()
    print(PG_MANIFEST_MARK + json.dumps(manifest), file=sys.stderr, flush=True)
    return 0


def pg_manifest_of(prefix: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [*prefix, sys.executable, os.path.abspath(__file__), "pg-manifest"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise Failure(f"counting the restored database failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


@contextlib.contextmanager
def mongo_config(password: str):
    """A 0600 mongodump/mongorestore --config file holding the password (never on the command line)."""
    if not password:
        yield None
        return
    with tempfile.NamedTemporaryFile("w", prefix="webstack-backup-mongo-", suffix=".yml", delete=True) as cfg:
        os.chmod(cfg.name, 0o600)
        cfg.write(f"password: {json.dumps(password)}\n")
        cfg.flush()
        yield cfg.name


@contextlib.contextmanager
def scratch_redis(rdb: Path, spool: Path):
    """A throwaway redis-server (unix socket only) loaded from an RDB file; yields a client."""
    import redis

    work = Path(tempfile.mkdtemp(prefix=".redis-", dir=spool))
    try:
        os.link(rdb, work / "dump.rdb")
    except OSError:
        shutil.copy(rdb, work / "dump.rdb")
    sock = work / "redis.sock"
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--dir", str(work)),
            *(
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--databases",
                "256",
            ),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = redis.Redis(unix_socket_path=str(sock), socket_timeout=600)
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise Failure(f"redis-server could not load the RDB: {out.strip()[-600:]}")
            try:
                client.ping()
                break
            except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise Failure("redis-server did not load the RDB within 600s") from None
                time.sleep(0.1)
        yield client
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def redis_dbs(client) -> list[int]:
    return sorted(int(k[2:]) for k in client.info("keyspace") if k.startswith("db"))


def redis_read(pipe, kind: str, key: bytes) -> None:
    """Queue the read of one key's value by its type (DUMP for module types)."""
    if kind == "string":
        pipe.get(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        pipe.xrange(key)
    else:
        pipe.dump(key)


def redis_manifest(client, batch: int = 500) -> dict:
    """Key count and an order-independent checksum over keys, types and values, per database."""
    dbs = {}
    for db in redis_dbs(client):
        client.execute_command("SELECT", db)
        digests, count, cursor = [], 0, 0
        while True:
            cursor, keys = client.scan(cursor=cursor, count=batch)
            if keys:
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.type(key)
                kinds = [k.decode() if isinstance(k, bytes) else k for k in pipe.execute()]
                pipe = client.pipeline(transaction=False)
                for key, kind in zip(keys, kinds, strict=True):
                    redis_read(pipe, kind, key)
                values = pipe.execute()
                for key, kind, value in zip(keys, kinds, values, strict=True):
                    if value is None and kind != "none":
                        continue  # expired between SCAN and read
                    known = kind in ("string", "list", "set", "hash", "zset", "stream")
                    digests.append(redis_value_digest(kind if known else "other", key, value))
                    count += 1
            if cursor == 0:
                break
        client.execute_command("SELECT", 0)
        if count:
            dbs[str(db)] = {"keys": count, "checksum": combine_digests(digests)}
    total = sum(d["keys"] for d in dbs.values())
    return {"dbs": dbs, "keys": total}


def redis_copy(source, target, batch: int = 500) -> int:
    """Replace every key of target with source's (DUMP/RESTORE with TTLs; no FLUSHALL, which may be renamed)."""
    copied = 0
    for db in sorted(set(redis_dbs(target)) | set(redis_dbs(source))):
        target.execute_command("SELECT", db)
        cursor = 0
        while True:
            cursor, keys = target.scan(cursor=cursor, count=batch)
            if keys:
                target.unlink(*keys)
            if cursor == 0:
                break
        source.execute_command("SELECT", db)
        cursor = 0
        while True:
            cursor, keys = source.scan(cursor=cursor, count=batch)
            if keys:
                pipe = source.pipeline(transaction=False)
                for key in keys:
                    pipe.dump(key)
                    pipe.pttl(key)
                out = pipe.execute()
                tpipe = target.pipeline(transaction=False)
                for i, key in enumerate(keys):
                    payload, ttl = out[2 * i], out[2 * i + 1]
                    if payload is None:
                        continue
                    tpipe.restore(key, max(int(ttl), 0), payload, replace=True)
                    copied += 1
                tpipe.execute()
            if cursor == 0:
                break
    target.execute_command("SELECT", 0)
    source.execute_command("SELECT", 0)
    return copied


# ---------------------------------------------------------------- command line


def load(config_path: str) -> Backup:
    try:
        config = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as exc:
        raise Failure(f"cannot read the configuration {config_path}: {exc}", 2) from None
    errors = validate_config(config)
    if errors:
        raise Failure(f"{config_path}: " + "; ".join(errors), 2)
    env = dict(os.environ)
    env_file = config.get("env_file")
    if env_file and os.path.exists(env_file):
        for key, value in parse_env_file(Path(env_file).read_text()).items():
            env.setdefault(key, value)  # the unit's EnvironmentFile= already set them under systemd
    env["RESTIC_REPOSITORY"] = config["repository"]
    return Backup(config, env)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="webstack-backup", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--config", default=os.environ.get("WEBSTACK_BACKUP_CONFIG", DEFAULT_CONFIG))
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="dump, manifest and upload one job (or --all)")
    run.add_argument("job", nargs="?")
    run.add_argument("--all", action="store_true")
    run.add_argument("--label", help="tag the snapshot label:<LABEL> (e.g. pre-release-1.4.2)")
    flush = sub.add_parser("flush", help="upload what the spool directory holds")
    flush.add_argument("job", nargs="?")
    sub.add_parser("forget", help="apply the retention policy and prune")
    sub.add_parser("check", help="restic check --read-data-subset")
    sub.add_parser("init", help="create the repository unless it exists")
    snaps = sub.add_parser("snapshots", help="snapshots of this host (of a job)")
    snaps.add_argument("--job")
    snaps.add_argument("--from-host")
    restore = sub.add_parser("restore", help="restore a snapshot and prove it against its manifest")
    restore.add_argument("job")
    restore.add_argument("--snapshot", default="latest")
    restore.add_argument("--label", help="the newest snapshot with this label")
    restore.add_argument("--from-host", help="the host that made the snapshot (default: this one)")
    restore.add_argument("--target", choices=("scratch", "live"), default="scratch")
    restore.add_argument("--scratch-name")
    restore.add_argument("--keep-scratch", action="store_true")
    restore.add_argument("--yes-overwrite-live", action="store_true")
    restore.add_argument("--drop-previous", action="store_true")
    check_config = sub.add_parser("check-config", help="validate a configuration file")
    check_config.add_argument("file")
    sub.add_parser("pg-dump", help=argparse.SUPPRESS)
    sub.add_parser("pg-manifest", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("pg-dump", "pg-manifest"):
        import psycopg2

        try:
            if args.command == "pg-dump":
                return pg_dump_helper()
            print(json.dumps(pg_manifest(pg_connect())))
            return 0
        except psycopg2.Error as exc:
            print(f"PostgreSQL: {str(exc).strip()}", file=sys.stderr)
            return 1
    result: Any
    code = 0
    try:
        if args.command == "check-config":
            args.config = args.file
            load(args.config)
            result = {"valid": True}
        else:
            backup = load(args.config)
            if args.command == "run":
                if args.label and not LABEL.match(args.label):
                    raise Failure(f"label {args.label!r}: expected letters, digits, . _ - (like pre-release-1.4.2)", 2)
                names = sorted(backup.config["jobs"]) if args.all else [args.job]
                if not args.all and not args.job:
                    raise Failure("name a job or pass --all", 2)
                result = {"jobs": []}
                for name in names:
                    try:
                        result["jobs"].append(backup.run(name, args.label))
                    except Failure as exc:
                        result["jobs"].append({"job": name, "error": str(exc), "exit": exc.code})
                        code = max(code, exc.code)
                        log(f"{name}: {exc}", True)
            elif args.command == "flush":
                result = {
                    "jobs": [backup.flush(n) for n in ([args.job] if args.job else sorted(backup.config["jobs"]))]
                }
            elif args.command == "forget":
                result = backup.forget()
            elif args.command == "check":
                result = backup.check()
            elif args.command == "init":
                result = backup.init()
            elif args.command == "snapshots":
                result = {"snapshots": backup.snapshots(args.job, args.from_host)}
            elif args.command == "restore":
                result = backup.restore(args.job, args)
                if not result["verified"]:
                    code = 1
                    log(
                        f"{args.job}: restore does NOT match the manifest: {'; '.join(result['differences'][:10])}",
                        True,
                    )
                else:
                    log(f"{args.job}: restored snapshot {result['snapshot']} ({args.target}) and verified it")
    except Failure as exc:
        log(str(exc), True)
        print(json.dumps({"error": str(exc), "exit": exc.code}))
        return exc.code
    print(json.dumps(result, indent=1, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
