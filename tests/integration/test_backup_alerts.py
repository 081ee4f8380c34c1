"""webstack-backup's alert hook through SNS, and its mongodb engine around mongodump, against a moto server.

The program (roles/backup/files/webstack-backup.py) runs as the timers run it, with the configuration
the role writes; its SNS alert is the same boto3 call it makes on a data host, sent to moto. An SQS
queue subscribed to the topic reads what an operator's subscription would receive.

No mongodump can be installed on this machine: one test runs the mongodb job with none on PATH (the
failure a host without mongodb-database-tools sees), the other with a stand-in script named
mongodump that records what it is given and writes an archive and the log lines mongo-tools prints
("done dumping <ns> (<n> documents)", the format of mongo-tools' source). The stand-in proves the
command, the password's path and the manifest; it says nothing about a real mongodump.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "webstack-backup.py"
FAKE_SECRETS = {
    "RESTIC_PASSWORD": "integration-fake-restic-password",
    # As the role writes them when backup_s3_access_key_id is set; moto takes any.
    "AWS_ACCESS_KEY_ID": "integration-fake-access-key",
    "AWS_SECRET_ACCESS_KEY": "integration-fake-secret-key",
    "WEBSTACK_BACKUP_PASSWORD_DOCS": "integration-fake-mongo-password",
}
STAND_IN = """#!/bin/sh
# Stand-in for mongodump (none can be installed here): records its arguments and
# its --config file, writes an archive, prints mongo-tools' log lines, exits 0.
printf '%s\\n' "$@" > "$STAND_IN_RECORD/argv"
for arg in "$@"; do
  case "$arg" in
    --config=*)
      cfg=${arg#--config=}
      /usr/bin/stat -c %a "$cfg" > "$STAND_IN_RECORD/config-mode"
      /bin/cat "$cfg" > "$STAND_IN_RECORD/config" ;;
    --archive=*) printf 'stand-in archive' > "${arg#--archive=}" ;;
  esac
done
printf '2026-11-28T10:00:00.100+0000\\tdone dumping eec_nif.studentusers (1500 documents)\\n' >&2
printf '2026-11-28T10:00:00.200+0000\\tdone dumping eec_nif.feeinvoices (1 document)\\n' >&2
"""


@pytest.fixture
def alert_queue(aws_client: Callable) -> tuple[str, Callable[[], list[dict]]]:
    """An SNS topic with an SQS queue subscribed; returns the topic ARN and a reader of the queue."""
    sns, sqs = aws_client("sns"), aws_client("sqs")
    topic = sns.create_topic(Name=f"backups-{os.getpid()}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"backup-alerts-{os.getpid()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def read() -> list[dict]:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    yield topic, read
    sqs.delete_queue(QueueUrl=queue_url)
    sns.delete_topic(TopicArn=topic)


def run_job(
    tmp_path: Path, moto_endpoint: str, topic: str, path: str, uri: str, **extra_env: str
) -> tuple[int, dict, Path]:
    """webstack-backup run docs, configured as the role configures it; returns exit code, output and spool."""
    spool = tmp_path / "spool"
    config = {
        "host": "data1",
        "repository": f"s3:{moto_endpoint}/backups/data1",
        "spool_dir": str(spool),
        "state_dir": str(tmp_path / "state"),
        "env_file": str(tmp_path / "restic.env"),
        "upload": {"retries": 0, "delay": 0, "max_delay": 0, "timeout": 30},
        "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_within": "2d"},
        "alert": {"command": "", "sns_topic_arn": topic, "sns_region": "us-east-1", "sns_endpoint_url": moto_endpoint},
        "jobs": {"docs": {"engine": "mongodb", "uri": uri}},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "restic.env").write_text("".join(f'{k}="{v}"\n' for k, v in FAKE_SECRETS.items()))
    # Run by hand (as playbooks/backup.yml runs it), not by its unit: the credentials are only in the env file.
    env = dict(PATH=path, HOME=str(tmp_path), WEBSTACK_BACKUP_CONFIG=str(tmp_path / "config.json"), **extra_env)
    proc = subprocess.run(
        [sys.executable, str(PROGRAM), "run", "docs"], env=env, capture_output=True, text=True, timeout=120
    )
    return proc.returncode, json.loads(proc.stdout), spool


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in FAKE_SECRETS.values():
            assert secret not in text


def test_a_failed_dump_alerts_the_sns_topic(tmp_path, moto_endpoint, alert_queue):
    """mongodump missing (a host without mongodb-database-tools): exit 1, nothing kept, the topic told."""
    topic, read = alert_queue
    empty = tmp_path / "bin"
    empty.mkdir()
    rc, out, spool = run_job(tmp_path, moto_endpoint, topic, str(empty), "mongodb://127.0.0.1:1/?replicaSet=rs0")
    assert rc == 1
    job = out["jobs"][0]
    assert job["exit"] == 1
    assert "mongodump is not installed on this host (mongodb-database-tools" in job["error"]
    assert not any((spool / "docs").iterdir())
    state = json.loads((tmp_path / "state" / "docs.json").read_text())
    assert "mongodump is not installed" in state["last_error"]
    messages = read()
    assert len(messages) == 1, messages
    assert messages[0]["TopicArn"] == topic
    assert messages[0]["Subject"] == "backup dump failed: docs"
    assert messages[0]["Message"].startswith("webstack-backup on data1: dump failed docs: mongodump is not installed")
    assert_no_secret(json.dumps(messages), json.dumps(out))


def test_mongodb_job_around_mongodump(tmp_path, moto_endpoint, alert_queue):
    """A stand-in mongodump: the command and password path as built, the manifest from its log, kept when S3
    cannot be written (no restic on this machine either) and the topic told."""
    topic, read = alert_queue
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mongodump").write_text(STAND_IN)
    (bin_dir / "mongodump").chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    uri = "mongodb://backup@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin"
    path = str(bin_dir)  # the stand-in only: no restic either, whatever the machine has
    rc, out, spool = run_job(tmp_path, moto_endpoint, topic, path, uri, STAND_IN_RECORD=str(record))
    argv = (record / "argv").read_text().splitlines()
    assert argv[0] == f"--uri={uri}"
    assert argv[1].startswith(f"--archive={spool}/docs/") and argv[1].endswith("/docs.archive.gz.partial")
    assert argv[2:4] == ["--gzip", argv[3]] and argv[3].startswith("--config=")
    assert argv[4:] == ["--oplog"]  # the uri names a replica set
    assert (record / "config-mode").read_text().strip() == "600"
    assert (record / "config").read_text() == 'password: "integration-fake-mongo-password"\n'
    assert not Path(argv[3].split("=", 1)[1]).exists()  # removed after the dump
    assert_no_secret("\n".join(argv))
    # Dumped, not uploaded (exit 3): the dump and its manifest wait in the spool.
    assert rc == 3, out
    assert "restic is not installed" in out["jobs"][0]["error"]
    (entry,) = (spool / "docs").iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["engine"] == "mongodb"
    assert manifest["data"] == {
        "collections": {"eec_nif.studentusers": 1500, "eec_nif.feeinvoices": 1},
        "documents": 1501,
        "oplog": True,
    }
    assert manifest["dump"]["file"] == "docs.archive.gz" and manifest["dump"]["bytes"] == len("stand-in archive")
    assert oct((entry / "docs.archive.gz").stat().st_mode & 0o777) == "0o600"
    messages = read()
    assert [m["Subject"] for m in messages] == ["backup upload failed: docs"]
    assert "1 dump(s) kept in" in messages[0]["Message"]
    assert_no_secret(json.dumps(messages))
