"""The decisions of webstack-backup (roles/backup/files/webstack-backup.py) that need no server."""

from __future__ import annotations

import argparse
import importlib.util
import json
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[3] / "roles" / "backup" / "files" / "webstack-backup.py"


def _load():
    loader = SourceFileLoader("webstack_backup", str(PROGRAM))
    spec = importlib.util.spec_from_loader("webstack_backup", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


wb = _load()


def test_retry_delays_double_up_to_the_cap():
    assert wb.retry_delays(5, 30, 600) == [30, 60, 120, 240, 480]
    assert wb.retry_delays(7, 30, 100) == [30, 60, 100, 100, 100, 100, 100]
    assert wb.retry_delays(0, 30, 600) == []


@pytest.mark.parametrize(("rc", "ok"), [(0, True), (1, False), (3, False), (130, False), (-1, False)])
def test_only_a_complete_snapshot_counts(rc, ok):
    # 3 = restic saved a snapshot but could not read some source: not a backup to rely on.
    assert wb.restic_exit_ok(rc) is ok


@pytest.mark.parametrize(
    ("stderr", "missing"),
    [
        ("Fatal: unable to open config file: Stat: The specified bucket does not exist\nIs there a repository", True),
        ("Fatal: unable to open config file: Stat: The specified key does not exist.", True),
        (
            "Fatal: unable to open config file: <config/> does not exist: open /r/config: no such file or directory",
            True,
        ),
        ('Fatal: unable to open config file: Stat: Get "http://h:1/b/?location=": dial tcp: connection refused', False),
        ("Fatal: wrong password or no key found", False),
        ("Fatal: unable to open config file: Stat: Access Denied.", False),
    ],
)
def test_init_only_when_the_repository_is_missing(stderr, missing):
    assert wb.is_missing_repository(stderr) is missing


def test_env_file_round_trip_with_quotes():
    text = '# comment\nRESTIC_PASSWORD="pa\\"ss\\\\word"\nAWS_ACCESS_KEY_ID=AKIA\n\nX=\'single\'\n'
    assert wb.parse_env_file(text) == {"RESTIC_PASSWORD": 'pa"ss\\word', "AWS_ACCESS_KEY_ID": "AKIA", "X": "single"}


def test_password_variable_of_a_job():
    assert wb.env_name("app-db.2") == "WEBSTACK_BACKUP_PASSWORD_APP_DB_2"


def _config(**over):
    config = {
        "host": "h",
        "repository": "s3:http://127.0.0.1:1/b/p",
        "spool_dir": "/tmp/s",
        "jobs": {"appdb": {"engine": "postgresql", "database": "app"}, "cache": {"engine": "redis"}},
        "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_within": "2d"},
        "upload": {"retries": 1},
    }
    config.update(over)
    return config


def test_a_good_configuration_has_no_errors():
    assert wb.validate_config(_config()) == []


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"retention": {"keep_daily": -1}}, "retention keep_daily must be 0 or more, found -1"),
        ({"repository": "/srv/restic"}, "repository must be restic's s3:"),
        ({"jobs": {"Bad Name": {"engine": "redis"}}}, "job name 'Bad Name'"),
        ({"jobs": {"x": {"engine": "mysql"}}}, "engine must be one of postgresql, redis, mongodb, found 'mysql'"),
        ({"jobs": {"x": {"engine": "postgresql"}}}, "a postgresql job needs database"),
        ({"jobs": {"x": {"engine": "mongodb"}}}, "a mongodb job needs uri"),
        ({"jobs": {"x": {"engine": "mongodb", "uri": "mongodb://u:pw@h/"}}}, "the uri holds a password"),
        (
            {"jobs": {"x": {"engine": "mongodb", "uri": "mongodb://h1,h2/app?replicaSet=rs0", "oplog": True}}},
            "oplog needs a dump of the whole instance, but the uri names the database 'app'",
        ),
    ],
)
def test_bad_configurations_say_what_is_wrong(over, fragment):
    assert any(fragment in e for e in wb.validate_config(_config(**over))), wb.validate_config(_config(**over))


def test_forget_arguments_follow_the_policy():
    assert wb.forget_args({"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_hourly": 0}) == [
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "12",
    ]
    assert wb.forget_args({"keep_daily": 0, "keep_within": "2d"}) == ["--keep-within", "2d"]
    with pytest.raises(wb.Failure, match="keeps nothing"):
        wb.forget_args({"keep_daily": 0})


PG = {"engine": "postgresql", "data": {"tables": {"public.a": {"rows": 3, "checksum": "10"}}}}


def test_identical_postgresql_data_has_no_differences():
    assert wb.compare_manifests(PG, json.loads(json.dumps(PG))) == []


@pytest.mark.parametrize(
    ("found", "fragment"),
    [
        ({"public.a": {"rows": 2, "checksum": "10"}}, "table public.a: rows 2 != 3 expected"),
        ({"public.a": {"rows": 3, "checksum": "11"}}, "table public.a: checksum 11 != 10 expected"),
        ({}, "table public.a: missing from the restored database"),
        (
            {"public.a": {"rows": 3, "checksum": "10"}, "public.b": {"rows": 0, "checksum": "0"}},
            "table public.b: in the restored database but not in the backup",
        ),
    ],
)
def test_postgresql_differences_are_named(found, fragment):
    assert fragment in wb.compare_manifests(PG, {"engine": "postgresql", "data": {"tables": found}})


def test_redis_differences_per_database():
    want = {"engine": "redis", "data": {"dbs": {"0": {"keys": 2, "checksum": "aa"}}}}
    assert wb.compare_manifests(want, want) == []
    found = {"data": {"dbs": {"0": {"keys": 2, "checksum": "ab"}, "3": {"keys": 1, "checksum": "cc"}}}}
    assert wb.compare_manifests(want, found) == [
        "db 0: checksum ab != aa expected",
        "db 3: keys 1 != 0 expected",
        "db 3: checksum cc != None expected",
    ]
    assert wb.compare_manifests(want, {"data": {"dbs": {}}}) == [
        "db 0: keys 0 != 2 expected",
        "db 0: checksum None != aa expected",
    ]


def test_redis_checksum_ignores_order_and_sees_every_change():
    a = wb.redis_value_digest("string", b"k1", b"v")
    b = wb.redis_value_digest("hash", b"k2", {b"f": b"1", b"g": b"2"})
    assert wb.combine_digests([a, b]) == wb.combine_digests([b, a])
    # A hash's field order does not matter; a set's member order neither.
    assert b == wb.redis_value_digest("hash", b"k2", {b"g": b"2", b"f": b"1"})
    assert wb.redis_value_digest("set", b"s", {b"x", b"y"}) == wb.redis_value_digest("set", b"s", {b"y", b"x"})
    # A list's order does; a value, a key, a type all do.
    assert wb.redis_value_digest("list", b"l", [b"x", b"y"]) != wb.redis_value_digest("list", b"l", [b"y", b"x"])
    assert a != wb.redis_value_digest("string", b"k1", b"w")
    assert a != wb.redis_value_digest("string", b"k0", b"v")
    assert wb.redis_value_digest("list", b"l", [b"ab"]) != wb.redis_value_digest("list", b"l", [b"a", b"b"])
    assert wb.redis_value_digest("zset", b"z", [(b"m", 1.0)]) != wb.redis_value_digest("zset", b"z", [(b"m", 2.0)])


def test_postgresql_database_checksum_covers_every_table():
    tables = {"public.a": {"rows": 1, "checksum": "5"}, "public.b": {"rows": 2, "checksum": "6"}}
    other = dict(tables, **{"public.b": {"rows": 2, "checksum": "7"}})
    assert wb.pg_checksum(tables) != wb.pg_checksum(other)
    assert wb.pg_checksum(tables) == wb.pg_checksum(dict(reversed(list(tables.items()))))


def test_mongodump_log_gives_counts():
    log = (
        "2026-11-28T10:00:00.000+0000\twriting app.users to archive '/spool/app.archive.gz.partial'\n"
        "2026-11-28T10:00:00.100+0000\tdone dumping app.users (1200 documents)\n"
        "2026-11-28T10:00:00.200+0000\tdone dumping app.events (1 document)\n"
        "2026-11-28T10:00:00.300+0000\tdone dumping app.empty (0 documents)\n"
        "2026-11-28T10:00:00.400+0000\twriting captured oplog to \n"
    )
    assert wb.mongodump_counts(log) == {"app.users": 1200, "app.events": 1, "app.empty": 0}
    assert (
        wb.mongorestore_count("...\n1201 document(s) restored successfully. 0 document(s) failed to restore.") == 1201
    )


# Everything around mongodump that runs without it. No mongodump or mongorestore exists on the machine
# these tests run on: the commands are checked as built, and the log lines are the format mongo-tools
# writes ("done dumping %v (%v %v)", "%v document(s) restored successfully"), not captured output.


@pytest.mark.parametrize(
    ("uri", "oplog", "expected"),
    [
        ("mongodb://db1:27017,db2:27017/?replicaSet=rs0&authSource=admin", None, True),
        ("mongodb://db1:27017/?replicaset=rs0", None, True),  # URI options are case-insensitive
        ("mongodb://127.0.0.1:27017/", None, False),  # a standalone has no oplog
        ("mongodb://db1/app?replicaSet=rs0", None, False),  # a database dump cannot carry it
        ("mongodb://db1,db2/?replicaSet=rs0", False, False),  # the job's own setting wins
        ("mongodb+srv://cluster0.example.net/", True, True),
    ],
)
def test_oplog_where_a_replica_set_exists(uri, oplog, expected):
    job = {"uri": uri} if oplog is None else {"uri": uri, "oplog": oplog}
    assert wb.mongodb_oplog(job) is expected


def test_mongodump_command_of_a_replica_set_member():
    job = {"uri": "mongodb://backup@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin"}
    cmd = wb.mongodump_command(job, Path("/spool/app/20261128T093000Z/app.archive.gz.partial"), "/tmp/cfg.yml")
    assert cmd == [
        "mongodump",
        "--uri=mongodb://backup@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin",
        "--archive=/spool/app/20261128T093000Z/app.archive.gz.partial",
        "--gzip",
        "--config=/tmp/cfg.yml",
        "--oplog",
    ]
    standalone = wb.mongodump_command({"uri": "mongodb://127.0.0.1/"}, Path("/s/a.archive.gz"), None)
    assert "--oplog" not in standalone and not any(a.startswith("--config") for a in standalone)


def test_mongorestore_replays_the_oplog_only_over_the_live_data():
    job = {"uri": "mongodb://db1,db2/?replicaSet=rs0"}
    live = wb.mongorestore_command(job, Path("/w/a.archive.gz"), "/tmp/c.yml", oplog=True, scratch_suffix=None)
    assert live == [
        "mongorestore",
        "--uri=mongodb://db1,db2/?replicaSet=rs0",
        "--archive=/w/a.archive.gz",
        "--gzip",
        "--drop",
        "--config=/tmp/c.yml",
        "--oplogReplay",
    ]
    # mongorestore refuses --oplogReplay with --nsFrom/--nsTo ("cannot use --oplogReplay with namespace renames").
    scratch = wb.mongorestore_command(job, Path("/w/a.archive.gz"), None, oplog=True, scratch_suffix="restore_x")
    assert "--oplogReplay" not in scratch
    assert scratch[-2:] == ["--nsFrom=$db$.$coll$", "--nsTo=$db$_restore_x.$coll$"]


def test_the_password_goes_to_a_private_config_file_never_the_command_line():
    with wb.mongo_config("fake-mongo-password-for-tests") as path:
        assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
        assert Path(path).read_text() == 'password: "fake-mongo-password-for-tests"\n'
        cmd = wb.mongodump_command({"uri": "mongodb://h/"}, Path("/s/x"), path)
        assert "fake-mongo-password-for-tests" not in " ".join(cmd)
    assert not Path(path).exists()
    with wb.mongo_config("") as path:
        assert path is None


def test_a_missing_dump_tool_is_a_failure_that_names_its_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there
    backup = _backup(tmp_path, jobs={"docs": {"engine": "mongodb", "uri": "mongodb://127.0.0.1:1/"}})
    with pytest.raises(wb.Failure, match=r"mongodump is not installed on this host \(mongodb-database-tools"):
        backup.dump("docs", backup.config["jobs"]["docs"], None)
    assert not any((tmp_path / "spool" / "docs").iterdir())  # no half-written dump left
    with pytest.raises(wb.Failure, match="restic is not installed"):
        backup.restic("snapshots")


SNAPS = [
    {"id": "aaaa1111", "short_id": "aaaa1111", "time": "2026-11-01T00:00:00Z", "tags": ["webstack"]},
    {"id": "bbbb2222", "short_id": "bbbb2222", "time": "2026-11-02T00:00:00Z", "tags": ["label:pre-release-1.0"]},
    {"id": "cccc3333", "short_id": "cccc3333", "time": "2026-11-03T00:00:00Z", "tags": ["webstack"]},
]


def test_pick_snapshot():
    assert wb.pick_snapshot(SNAPS, "latest", None)["id"] == "cccc3333"
    assert wb.pick_snapshot(SNAPS, "latest", "pre-release-1.0")["id"] == "bbbb2222"
    assert wb.pick_snapshot(SNAPS, "aaaa", None)["id"] == "aaaa1111"
    with pytest.raises(wb.Failure, match=r"labelled pre-release-2\.0"):
        wb.pick_snapshot(SNAPS, "latest", "pre-release-2.0")
    with pytest.raises(wb.Failure, match="matches 0 snapshots"):
        wb.pick_snapshot(SNAPS, "dddd", None)


def test_stamps():
    assert wb.stamp_to_restic_time("20261128T093000Z") == "2026-11-28 09:30:00"


def _backup(tmp_path, **over):
    config = _config(spool_dir=str(tmp_path / "spool"), state_dir=str(tmp_path / "state"), **over)
    return wb.Backup(config, {"PATH": "/usr/bin:/bin"})


def test_alert_command_gets_the_event_but_no_secret(tmp_path):
    out = tmp_path / "alert.txt"
    backup = _backup(tmp_path, alert={"command": f'env > {out}; echo "$WEBSTACK_BACKUP_EVENT" >> {out}'})
    backup.env.update(RESTIC_PASSWORD="secret-1", WEBSTACK_BACKUP_PASSWORD_APPDB="secret-2", AWS_SECRET_ACCESS_KEY="s3")
    assert backup.alert("appdb", "upload failed", "S3 unreachable") == ["command"]
    text = out.read_text()
    assert "WEBSTACK_BACKUP_JOB=appdb" in text
    assert "WEBSTACK_BACKUP_MESSAGE=S3 unreachable" in text
    assert text.strip().endswith("upload failed")
    for secret in ("secret-1", "secret-2", "=s3"):
        assert secret not in text


def test_restore_over_live_data_needs_the_confirmation(tmp_path):
    backup = _backup(tmp_path)
    args = argparse.Namespace(target="live", yes_overwrite_live=False)
    with pytest.raises(wb.Failure, match="--yes-overwrite-live") as caught:
        backup.restore("appdb", args)
    assert caught.value.code == 2


def test_upload_failure_keeps_the_dump_and_retries(tmp_path, monkeypatch):
    """restic failing every time: every attempt made, the spooled dump kept, exit code 3."""
    backup = _backup(tmp_path, upload={"retries": 2, "delay": 0, "max_delay": 0})
    entry = tmp_path / "spool" / "cache" / "20261128T093000Z"
    entry.mkdir(parents=True)
    (entry / "cache.rdb").write_bytes(b"REDIS")
    manifest = {"created": "20261128T093000Z", "dump": {"file": "cache.rdb"}, "label": ""}
    (entry / wb.MANIFEST).write_text(json.dumps(manifest))
    calls = []

    class Proc:
        returncode, stdout, stderr = 1, "", "Fatal: dial tcp: connection refused"

    def fake_restic(*args, **kwargs):
        calls.append(args[0])
        return Proc()

    monkeypatch.setattr(backup, "restic", fake_restic)
    with pytest.raises(wb.Failure) as caught:
        backup.upload("cache", {"engine": "redis"}, entry)
    assert caught.value.code == 3
    assert calls.count("backup") == 3
    assert (entry / "cache.rdb").read_bytes() == b"REDIS"
    assert "after 3 attempts" in str(caught.value)


def test_upload_success_removes_the_spooled_dump(tmp_path, monkeypatch):
    backup = _backup(tmp_path, upload={"retries": 2, "delay": 0, "max_delay": 0})
    entry = tmp_path / "spool" / "cache" / "20261128T093000Z"
    entry.mkdir(parents=True)
    (entry / "cache.rdb").write_bytes(b"REDIS")
    (entry / wb.MANIFEST).write_text(json.dumps({"created": "20261128T093000Z", "dump": {"file": "cache.rdb"}}))
    seen = {}

    class Proc:
        returncode, stderr = 0, ""
        stdout = '{"message_type":"summary","snapshot_id":"abcd1234"}\n'

    def fake_restic(*args, **kwargs):
        seen["args"], seen["cwd"] = args, kwargs.get("cwd")
        seen["files"] = sorted(p.name for p in Path(kwargs["cwd"]).iterdir())
        return Proc()

    monkeypatch.setattr(backup, "restic", fake_restic)
    result = backup.upload("cache", {"engine": "redis"}, entry)
    assert result["snapshot"] == "abcd1234"
    assert not entry.exists()
    # One stable directory per job (restic groups by path), the dump's time as the snapshot's.
    assert seen["cwd"] == tmp_path / "spool" / ".upload" / "cache"
    assert seen["files"] == ["cache.rdb", "manifest.json"]
    assert "2026-11-28 09:30:00" in seen["args"]
    assert "job:cache" in seen["args"]
