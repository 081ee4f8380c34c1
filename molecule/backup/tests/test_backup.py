"""What an operator sees on a data host with the backup role: timers, backups, proven restores.

The tests share one converged host and run in file order: the end-to-end tests
write known data, back it up with the real units and playbooks, break the data
and restore it with playbooks/restore.yml.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "backup")
HOST = f"{os.environ.get('WEBSTACK_RUN_ID', 'molecule')}-{SCENARIO}-bookworm"
MOTO_PORT = os.environ.get("WEBSTACK_TEST_BACKUP_MOTO_PORT", "22010")
REDIS = "REDISCLI_AUTH=molecule-fake-redis-password redis-cli --no-auth-warning"
ALERTS = "/var/log/webstack-backup-alerts.log"
SECRETS = ("molecule-fake-restic-password", "molecule-fake-db-password", "molecule-fake-redis-password")


def playbook(name: str, *extra: str) -> subprocess.CompletedProcess:
    """Run one of the collection's playbooks against the scenario's host, as an operator would."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="true",
        # One line per message: what the tests look for is never wrapped.
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(PROJECT / "playbooks" / name), *extra],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def psql(host, sql: str, database: str = "app") -> str:
    cmd = f"runuser -u postgres -- psql -X -q -tA -v ON_ERROR_STOP=1 -d {database} -c {quote(sql)}"
    return host.check_output(cmd)


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def restic(host, args: str, cwd: str = "/"):
    """restic with the host's repository and secrets (as the units have them)."""
    repository = json.loads(host.file("/etc/webstack-backup/config.json").content_string)["repository"]
    return host.run(
        f"cd {cwd} && set -a && . /etc/webstack-backup/restic.env && set +a && "
        f"RESTIC_REPOSITORY={repository} restic {args}"
    )


def snapshots(host, job: str) -> list[dict]:
    out = host.check_output(f"webstack-backup snapshots --job {job} 2>/dev/null")
    return json.loads(out)["snapshots"]


# What the applications wrote: two tables, some types that print differently
# under other settings (timestamptz, numeric, bytea, NULLs), and Redis data of
# every common type in two databases, some with TTLs.
PG_DATA = """
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer text, total numeric(12,2),
  placed timestamptz, note text, blob bytea);
CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text UNIQUE, tags text[]);
TRUNCATE orders, customers;
INSERT INTO customers SELECT g, 'customer ' || g, ARRAY['t' || (g % 7)] FROM generate_series(1, 500) g;
INSERT INTO orders SELECT g, 'customer ' || (g % 500 + 1), (g * 1.37)::numeric(12,2),
  timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes',
  CASE WHEN g % 5 = 0 THEN NULL ELSE md5(g::text) END, decode(md5(g::text), 'hex')
  FROM generate_series(1, 20000) g;
ALTER TABLE orders OWNER TO app; ALTER TABLE customers OWNER TO app;
"""
# The test's own fingerprint of the data, independent of webstack-backup's manifest.
PG_FINGERPRINT = (
    "SELECT (SELECT count(*) FROM orders) || ':' || (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o)"
    " || ':' || (SELECT count(*) FROM customers)"
    " || ':' || (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c)"
)


def write_redis(host) -> None:
    script = """
set -e
export REDISCLI_AUTH=molecule-fake-redis-password
R="redis-cli --no-auth-warning"
for i in $(seq 1 300); do printf 'SET user:%s profile-of-%s\\n' $i $i; done | $R >/dev/null
$R HSET session:1 user 1 cart "3 items" >/dev/null
$R RPUSH queue:mail a b c d >/dev/null
$R SADD online 1 2 3 >/dev/null
$R ZADD scores 10 alice 20 bob 15.5 carol >/dev/null
$R SET temporary kept EX 86400 >/dev/null
$R -n 2 SET other-db:key value >/dev/null
$R XADD events '*' kind signup user 1 >/dev/null
"""
    host.check_output(f"bash -c {quote(script)}")


def redis_fingerprint(host) -> str:
    """Every key of db 0 and 2 with its type and value, as the test reads them (sorted)."""
    script = """
export REDISCLI_AUTH=molecule-fake-redis-password
R="redis-cli --no-auth-warning"
for db in 0 2; do
  for key in $($R -n $db --scan | sort); do
    type=$($R -n $db TYPE "$key")
    case $type in
      string) value=$($R -n $db GET "$key") ;;
      hash) value=$($R -n $db HGETALL "$key" | paste -sd, ) ;;
      list) value=$($R -n $db LRANGE "$key" 0 -1 | paste -sd, ) ;;
      set) value=$($R -n $db SMEMBERS "$key" | sort | paste -sd, ) ;;
      zset) value=$($R -n $db ZRANGE "$key" 0 -1 WITHSCORES | paste -sd, ) ;;
      stream) value=$($R -n $db XLEN "$key") ;;
    esac
    echo "$db $key $type $value"
  done
done | md5sum; $R DBSIZE; $R -n 2 DBSIZE
"""
    return host.check_output(f"bash -c {quote(script)}")


# ---------------------------------------------------------------- schedule and secrets


@pytest.mark.parametrize("timer", ["appdb", "appdb-remote", "cache"])
def test_each_job_has_a_persistent_randomized_timer(host, timer):
    unit = f"webstack-backup@{timer}.timer"
    assert host.service(unit).is_enabled
    assert host.service(unit).is_running
    props = host.check_output(f"systemctl show {unit} -p NextElapseUSecRealtime -p Persistent -p RandomizedDelayUSec")
    assert "Persistent=yes" in props
    assert "RandomizedDelayUSec=5min" in props
    # systemd computed when it runs next.
    assert re.search(r"NextElapseUSecRealtime=\S+", props), props


def test_retention_and_check_are_scheduled(host):
    for unit in ("webstack-backup-forget.timer", "webstack-backup-check.timer"):
        assert host.service(unit).is_enabled
        assert "Persistent=yes" in host.check_output(f"systemctl show {unit} -p Persistent")


def test_secrets_only_in_the_root_only_env_file(host):
    env = host.file("/etc/webstack-backup/restic.env")
    assert env.user == "root"
    assert env.mode == 0o600
    assert "molecule-fake-restic-password" in env.content_string  # from Secrets Manager
    config = host.file("/etc/webstack-backup/config.json")
    assert config.mode == 0o600
    for secret in SECRETS:
        assert secret not in config.content_string
    unit = host.file("/etc/systemd/system/webstack-backup@.service").content_string
    assert "EnvironmentFile=/etc/webstack-backup/restic.env" in unit


def test_repository_exists(host):
    assert restic(host, "cat config").rc == 0


# ---------------------------------------------------------------- end to end


def test_write_known_data(host):
    psql(
        host,
        "SET ROLE app; " + PG_DATA.replace("ALTER TABLE orders OWNER TO app; ALTER TABLE customers OWNER TO app;", ""),
    )
    write_redis(host)
    pytest.fingerprints = {"pg": psql(host, PG_FINGERPRINT), "redis": redis_fingerprint(host)}
    assert pytest.fingerprints["pg"].startswith("20000:")


def test_scheduled_units_back_up_postgresql_local_and_remote(host):
    for job in ("appdb", "appdb-remote"):
        before = len(snapshots(host, job))
        assert host.run(f"systemctl start webstack-backup@{job}.service").rc == 0, host.run(
            f"journalctl -u webstack-backup@{job}.service -n 30 --no-pager"
        ).stdout
        assert len(snapshots(host, job)) == before + 1
    # Both read the same data through different paths: the same manifest.
    local, remote = (
        json.loads(restic(host, f"dump {snapshots(host, job)[-1]['id']} /manifest.json").stdout)
        for job in ("appdb", "appdb-remote")
    )
    assert local["data"]["tables"]["public.orders"]["rows"] == 20000
    assert local["data"]["tables"]["public.customers"]["rows"] == 500
    assert local["data"]["tables"] == remote["data"]["tables"]
    assert local["dump"]["sha256"] and local["dump"]["bytes"] > 0
    assert (
        host.file("/var/lib/webstack-backup/spool/appdb").exists is False
        or not host.run("ls -A /var/lib/webstack-backup/spool/appdb").stdout.strip()
    )


def test_backup_playbook_labels_a_pre_release_backup(host):
    result = playbook("backup.yml", "-e", f"backup_hosts={HOST}", "-e", "backup_tag=pre-release-9.9.9")
    assert result.returncode == 0, result.stdout + result.stderr
    for job in ("appdb", "cache"):
        tags = snapshots(host, job)[-1]["tags"]
        assert "label:pre-release-9.9.9" in tags, tags
    manifest = json.loads(restic(host, f"dump {snapshots(host, 'cache')[-1]['id']} /manifest.json").stdout)
    assert manifest["data"]["dbs"]["0"]["keys"] == 306
    assert manifest["data"]["dbs"]["2"]["keys"] == 1
    assert manifest["label"] == "pre-release-9.9.9"


def test_break_the_data(host):
    psql(
        host,
        "DROP TABLE customers CASCADE; DELETE FROM orders WHERE id % 3 = 0; UPDATE orders SET total = 0 WHERE id < 10",
    )
    host.check_output(
        f"{REDIS} DEL user:1 user:2 session:1 >/dev/null; {REDIS} SET intruder 1 >/dev/null; {REDIS} -n 2 FLUSHDB"
    )
    # The customers table is gone and the orders differ from what was backed up.
    assert psql(host, "SELECT to_regclass('public.customers') IS NULL") == "t"
    orders_before = ":".join(pytest.fingerprints["pg"].split(":")[:2])
    assert psql(host, PG_FINGERPRINT.split(" || ':' || (SELECT count(*) FROM customers)")[0]) != orders_before
    assert redis_fingerprint(host) != pytest.fingerprints["redis"]


def test_restore_over_live_data_needs_confirmation(host):
    result = playbook(
        "restore.yml", "-e", f"restore_host={HOST}", "-e", "restore_job=appdb", "-e", "restore_target=live"
    )
    assert result.returncode != 0
    assert "restore_confirm_overwrite=appdb" in result.stdout, result.stdout
    # Nothing was restored.
    assert psql(host, "SELECT count(*) FROM orders") != "20000"


def test_restore_postgresql_named_snapshot_over_live_data(host):
    snapshot = [s for s in snapshots(host, "appdb") if "label:pre-release-9.9.9" in s["tags"]][-1]["short_id"]
    result = playbook(
        "restore.yml",
        "-e",
        f"restore_host={HOST}",
        "-e",
        "restore_job=appdb",
        "-e",
        f"restore_snapshot={snapshot}",
        "-e",
        "restore_target=live",
        "-e",
        "restore_confirm_overwrite=appdb",
        "-e",
        "restore_drop_previous=true",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"snapshot {snapshot}" in result.stdout
    assert "restored to live and verified" in result.stdout
    # Identical by the test's own count and checksum, owners kept.
    assert psql(host, PG_FINGERPRINT) == pytest.fingerprints["pg"]
    assert psql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'") == "app"


def test_restore_redis_by_label_over_live_data(host):
    result = playbook(
        "restore.yml",
        "-e",
        f"restore_host={HOST}",
        "-e",
        "restore_job=cache",
        "-e",
        "restore_label=pre-release-9.9.9",
        "-e",
        "restore_target=live",
        "-e",
        "restore_confirm_overwrite=cache",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert redis_fingerprint(host) == pytest.fingerprints["redis"]
    ttl = int(host.check_output(f"{REDIS} TTL temporary"))
    assert 0 < ttl <= 86400


def test_restore_to_scratch_leaves_live_data_alone(host):
    psql(host, "INSERT INTO customers VALUES (9999, 'after the backup', NULL)")
    result = playbook("restore.yml", "-e", f"restore_host={HOST}", "-e", "restore_job=appdb-remote")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored to scratch and verified" in result.stdout
    assert psql(host, "SELECT count(*) FROM customers") == "501"
    # The scratch database was dropped after its verification.
    assert "_restore_" not in psql(host, "SELECT string_agg(datname, ',') FROM pg_database", "postgres")


def test_a_restore_that_does_not_match_its_manifest_fails_loudly(host):
    """A snapshot whose data disagrees with its manifest (a corrupt or tampered backup) fails the restore."""
    entry = "/root/tamper"
    host.check_output(
        f"set -e; rm -rf {entry}; mkdir -p {entry}; cd {entry}; {REDIS} --rdb cache.rdb >/dev/null 2>&1; "
        "sha=$(sha256sum cache.rdb | cut -d' ' -f1); "
        """printf '{"format":1,"job":"cache","engine":"redis","created":"20260101T000000Z","label":"tampered",'"""
        """'"dump":{"file":"cache.rdb","sha256":"%s"},"""
        """"data":{"dbs":{"0":{"keys":1,"checksum":"00"}}}}' $sha > manifest.json"""
    )
    made = restic(
        host, f"backup -q --host {HOST} --tag webstack,job:cache,label:tampered cache.rdb manifest.json", cwd=entry
    )
    assert made.rc == 0, made.stderr
    result = host.run("webstack-backup restore cache --label tampered --target scratch")
    assert result.rc == 1
    out = json.loads(result.stdout)
    assert out["verified"] is False
    assert "db 0: keys" in " ".join(out["differences"])
    assert "restore verification failed|cache|" in host.file(ALERTS).content_string
    tampered = json.loads(restic(host, "snapshots --json --tag label:tampered").stdout)
    assert restic(host, "forget " + " ".join(s["id"] for s in tampered)).rc == 0


def test_retention_keeps_daily_weekly_monthly(host):
    """Back-dated snapshots, then the role's retention unit; what remains is what 7/4/12 + 2d keeps."""
    times = [f"2025-05-{d:02d} 12:00:00" for d in range(20, 32)]
    times += [
        "2025-05-31 13:00:00",
        "2025-04-10 12:00:00",
        "2025-04-30 12:00:00",
        "2025-03-15 12:00:00",
        "2025-03-31 12:00:00",
    ]
    host.check_output("mkdir -p /root/retention-probe && echo probe > /root/retention-probe/marker")
    for when in times:
        made = restic(host, f"backup -q --host {HOST} --tag webstack --time '{when}' /root/retention-probe/marker")
        assert made.rc == 0, made.stderr
    assert host.run("systemctl start webstack-backup-forget.service").rc == 0, host.run(
        "journalctl -u webstack-backup-forget.service -n 30 --no-pager"
    ).stdout
    left = json.loads(restic(host, "snapshots --json --path /root/retention-probe/marker").stdout)
    kept = sorted(s["time"][:16].replace("T", " ") for s in left)
    assert kept == [
        "2025-03-31 12:00",  # monthly (March)
        "2025-04-10 12:00",  # weekly (4th newest ISO week)
        "2025-04-30 12:00",  # monthly (April), weekly
        "2025-05-25 12:00",  # daily (7th day), weekly
        "2025-05-26 12:00",
        "2025-05-27 12:00",
        "2025-05-28 12:00",
        "2025-05-29 12:00",
        "2025-05-30 12:00",  # daily, and within 2 days of the newest
        "2025-05-31 12:00",  # within 2 days of the newest
        "2025-05-31 13:00",  # newest: daily, weekly, monthly
    ]
    # The jobs' own recent snapshots are all within 2 days: none removed.
    assert len(snapshots(host, "appdb")) >= 2


def test_repository_check_reads_data_back(host):
    assert host.run("systemctl start webstack-backup-check.service").rc == 0
    log = host.check_output("journalctl -u webstack-backup-check.service -n 20 --no-pager")
    assert "read_data_subset" in log or "no errors were found" in log


# ---------------------------------------------------------------- failures


def test_a_failing_dump_never_becomes_a_snapshot(host):
    """A dump that fails (here: a database that does not exist) exits non-zero, alerts, uploads nothing."""
    host.check_output(
        "python3 -c \"import json; c=json.load(open('/etc/webstack-backup/config.json'));"
        " c['jobs']={'nodb': {'engine': 'postgresql', 'database': 'missing'}};"
        " json.dump(c, open('/root/nodb.json', 'w'))\""
    )
    result = host.run("webstack-backup --config /root/nodb.json run nodb")
    assert result.rc == 1
    assert 'database "missing" does not exist' in json.loads(result.stdout)["jobs"][0]["error"]
    assert "dump failed|nodb|" in host.file(ALERTS).content_string
    # The same alert through SNS (boto3 on the host, to moto), as a subscribed queue receives it.
    (message,) = [m for m in sns_alerts(host) if m["Subject"] == "backup dump failed: nodb"]
    assert message["TopicArn"].endswith(":webstack-backup-alerts")
    assert message["Message"].startswith(f"webstack-backup on {HOST}: dump failed nodb: pg_dump of missing failed")
    assert snapshots(host, "nodb") == []
    assert host.run("ls -A /var/lib/webstack-backup/spool/nodb").stdout.strip() == ""


def test_s3_outage_keeps_the_dump_alerts_and_uploads_it_later(host):
    before = len(snapshots(host, "cache"))
    host.check_output(f"{REDIS} SET written-during-outage yes >/dev/null")
    block = f"OUTPUT -p tcp --dport {MOTO_PORT} -j REJECT --reject-with tcp-reset"
    host.check_output(f"iptables -I {block}")
    try:
        failed = host.run("systemctl start webstack-backup@cache.service")
        assert failed.rc != 0
    finally:
        host.check_output(f"iptables -D {block}")
    journal = host.check_output("journalctl -u webstack-backup@cache.service -n 40 --no-pager")
    # Retried (2 retries: 3 attempts), then reported.
    assert "attempt 3" in journal, journal
    assert "kept in /var/lib/webstack-backup/spool/cache" in journal
    assert "upload failed|cache|" in host.file(ALERTS).content_string
    assert host.check_output("systemctl show webstack-backup@cache.service -p Result") == "Result=exit-code"
    # SNS is on the blocked moto server too: that alert could not go out, and the run still ended.
    spooled = host.check_output("ls /var/lib/webstack-backup/spool/cache").split()
    assert len(spooled) == 1
    assert host.file(f"/var/lib/webstack-backup/spool/cache/{spooled[0]}/cache.rdb").size > 0
    # S3 is back: the next run uploads the kept dump first, then its own.
    assert host.run("systemctl start webstack-backup@cache.service").rc == 0
    assert host.run("ls -A /var/lib/webstack-backup/spool/cache").stdout.strip() == ""
    after = snapshots(host, "cache")
    assert len(after) == before + 2
    outage = [s for s in after if s["time"].startswith(_stamp_to_iso(spooled[0]))]
    assert outage, (spooled, [s["time"] for s in after])
    manifest = json.loads(restic(host, f"dump {outage[0]['id']} /manifest.json").stdout)
    assert manifest["created"] == spooled[0]
    assert manifest["data"]["dbs"]["0"]["keys"] == 307  # the key written during the outage is in it


def sns_alerts(host) -> list[dict]:
    """Every alert the SNS topic delivered so far to the queue subscribed to it (read from this machine)."""
    import boto3

    endpoint = json.loads(host.file("/etc/webstack-backup/config.json").content_string)["alert"]["sns_endpoint_url"]
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.get_queue_url(QueueName="webstack-backup-alerts")["QueueUrl"]
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            break
        messages += [json.loads(m["Body"]) for m in got]
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    for secret in SECRETS:
        assert secret not in json.dumps(messages)
    pytest.sns_alerts = [*getattr(pytest, "sns_alerts", []), *messages]
    return pytest.sns_alerts


def _stamp_to_iso(stamp: str) -> str:
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"


def test_no_secret_reaches_the_journal(host):
    journal = host.check_output("journalctl --no-pager -o cat | tail -n 3000")
    for secret in SECRETS:
        assert secret not in journal
