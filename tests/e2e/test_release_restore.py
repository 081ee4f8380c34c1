"""A release whose migration changes data, and the emergency rollback that restores the pre-release backup.

On the session's local fleet (``conftest.fleet``), in file order:

1. a release of the deliberately broken v3 stops at its migration: no colour switched, data untouched;
2. a release of the next version backs up Redis (labelled), migrates the items (schema 2), switches, records
   and notifies (SNS on the fleet's moto server);
3. ``rollback.yml -e restore=true`` without the confirmation, or with another label, fails before any change;
4. with the backup's label it puts the previous version back, restores the data under maintenance (the items
   are exactly as before the release; an item written after it is gone), and prints each step's time;
5. a second run changes nothing.

The module leaves the fleet as it found it: the version that was live, the items of before.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import urllib.request

import boto3
import pytest

APP = "sample-api"
SITE = "sample.webstack.test"
APP_HOSTS = ["local-app1", "local-app2"]
RECORD = f"/var/lib/webstack/release-summaries/{APP}.json"
TOPIC = "webstack-local-releases"

# What the tests of this module pass on to each other.
state: dict = {}


def request(fleet, host: str, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Host": SITE, **({"Content-Type": "application/json"} if data else {})}
    url = f"https://127.0.0.1:{fleet.port(host, 443)}{path}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def versions(fleet) -> dict[str, str]:
    return {h: json.loads(request(fleet, h, "/health")[1])["version"] for h in APP_HOSTS}


def items(fleet) -> list[dict]:
    status, body = request(fleet, "local-app1", "/api/items")
    assert status == 200, body
    return json.loads(body)["items"]


def record(fleet, host: str) -> dict:
    return json.loads(fleet.exec(host, "cat", RECORD).stdout)


def confirm() -> str:
    return f"restore_confirm={state['label']}"


def history(fleet, host: str) -> list[dict]:
    """The release and rollback summaries kept on an app host, oldest first."""
    out = fleet.exec(host, "cat", RECORD.replace(".json", ".log")).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def done(summary: dict) -> dict[tuple[str, str], str]:
    return {(s["step"], s["host"]): s["result"] for s in summary["steps"]}


def show(title: str, run, summary: dict | None) -> None:
    """The playbook's time, the machine's load and each step's host and time (from the summary it recorded)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{title}: {run.seconds:.1f} s (ansible-playbook), load average {load}")
    for s in (summary or {}).get("steps", []):
        print(f"  {s['step']:<16} {s['host']:<24} {float(s['seconds']):6.1f} s  {s['result']}: {s['what']}")


@pytest.fixture(scope="module")
def sns(fleet):
    """The release topic on the fleet's moto server, with an SQS queue that keeps what it gets."""
    network = f"{fleet.prefix}webstack-local"
    inspect = subprocess.run(["docker", "network", "inspect", network], capture_output=True, check=True)
    gateway = json.loads(inspect.stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    session = boto3.Session(aws_access_key_id="fake", aws_secret_access_key="fake", region_name="us-east-1")
    endpoint = f"http://{gateway}:{4566 + fleet.offset}"
    client, sqs = session.client("sns", endpoint_url=endpoint), session.client("sqs", endpoint_url=endpoint)
    topic = client.create_topic(Name=TOPIC)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{TOPIC}-e2e")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def received() -> list[dict]:
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(json.loads(json.loads(message["Body"])["Message"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    return received


def test_a_failed_migration_stops_the_release_and_the_old_version_serves(fleet, sns):
    live = versions(fleet)
    assert len(set(live.values())) == 1, live
    state["previous"] = live["local-app1"]
    state["target"] = "v2" if state["previous"] != "v2" else "v1"
    for name in ("Blue Widget", "green gadget", "Item #3"):
        assert request(fleet, "local-app1", "/api/items", "POST", {"name": name})[0] == 201
    state["items"] = items(fleet)
    sns()  # drop what earlier runs sent

    run = fleet.play("playbooks/deploy.yml", "-e", f"app={APP}", "-e", "version=v3")
    show("deploy.yml v3 (its migration fails)", run, record(fleet, "local-app1"))
    assert run.rc != 0, run.output[-6000:]
    assert "the migration 'node src/migrate.js' of sample-api v3 failed (exit 1" in run.output, run.output[-6000:]
    assert "No colour was switched: the previous version keeps serving" in run.output
    assert versions(fleet) == live
    assert items(fleet) == state["items"]
    log = fleet.exec("local-app1", "cat", f"/var/lib/webstack/release-summaries/{APP}-v3-migrate.log").stdout
    assert "deliberately broken" in log
    assert record(fleet, "local-app1")["result"] == "failed"
    # The migration's task never shows the app's environment (REDIS_URL holds the Redis password).
    migration = run.output.split("TASK [Run the migration in a one-off container", 1)[1].split("TASK [", 1)[0]
    assert not [s for s in fleet.secrets if s in migration]
    assert [n["result"] for n in sns()] == ["failed"]


def test_release_backs_up_migrates_switches_records_and_notifies(fleet, sns):
    target = state["target"]
    run = fleet.play("playbooks/deploy.yml", "-e", f"app={APP}", "-e", f"version={target}")
    assert run.rc == 0, run.output[-6000:]
    records = [record(fleet, h) for h in APP_HOSTS]
    show(f"deploy.yml {target}", run, records[0])
    assert versions(fleet) == dict.fromkeys(APP_HOSTS, target)

    # The items of before, migrated; after them only what the release's smoke tests posted.
    now = items(fleet)
    migrated, later = now[: len(state["items"])], now[len(state["items"]) :]
    assert [(i["id"], i["name"]) for i in migrated] == [(i["id"], i["name"]) for i in state["items"]]
    assert all(i["schema"] == 2 and i["slug"] for i in migrated), migrated
    assert {i["name"] for i in later} <= {"smoke test"}, later
    assert "green-gadget" in [i["slug"] for i in migrated]

    steps = done(records[0])
    assert steps[("image", "localhost")] == "skipped"
    assert steps[("backup", "local-data1")] == "ok"
    assert steps[("migrate", "local-app1")] == "ok"
    assert ("migrate", "local-app2") not in steps  # once per release
    assert steps[("release", "local-app1")] == steps[("release", "local-app2")] == "ok"
    assert records[0] == records[1]
    rec = records[0]
    assert (rec["app"], rec["version"], rec["result"]) == (APP, target, "released")
    assert rec["by"] and rec["started_at"] and rec["finished_at"]
    label = rec["backup"]["label"]
    assert re.fullmatch(rf"pre-release-{APP}-{target}-\d{{8}}T\d{{6}}Z", label), label
    assert [j["job"] for j in rec["backup"]["jobs"]["local-data1"]] == ["cache"]
    assert label in run.output
    state["label"] = label

    (notice,) = sns()
    assert (notice["event"], notice["app"], notice["version"], notice["result"]) == ("release", APP, target, "released")
    assert notice["backup"]["label"] == label
    assert not [s for s in fleet.secrets if s in json.dumps(notice)]

    # Written after the release: the restore takes the data back to before it.
    assert request(fleet, "local-app1", "/api/items", "POST", {"name": "after the release"})[0] == 201


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "restore_confirm set to the label of the pre-release backup"),
        (["-e", "restore_confirm=pre-release-sample-api-v0-20260101T000000Z"], "restore_confirm must equal the label"),
    ],
    ids=["without-confirmation", "wrong-label"],
)
def test_rollback_with_restore_refuses_bad_input_before_any_change(fleet, extra, expected):
    before = items(fleet)
    run = fleet.play("playbooks/rollback.yml", "-e", f"app={APP}", "-e", "restore=true", *extra)
    assert run.rc != 0, run.output[-6000:]
    assert expected in run.output, run.output[-4000:]
    assert "Nothing was changed" in run.output
    assert versions(fleet) == dict.fromkeys(APP_HOSTS, state["target"])
    assert items(fleet) == before


def test_rollback_with_restore_brings_back_the_previous_version_and_its_data(fleet, sns):
    run = fleet.play(
        "playbooks/rollback.yml", "-e", f"app={APP}", "-e", "restore=true", "-e", f"restore_confirm={state['label']}"
    )
    assert run.rc == 0, run.output[-6000:]
    summary = history(fleet, "local-app1")[-1]
    show("rollback.yml with restore", run, summary)
    assert summary["event"] == "rollback"
    assert versions(fleet) == dict.fromkeys(APP_HOSTS, state["previous"])
    assert items(fleet) == state["items"]  # as before the release; the item written after it is gone
    for host in APP_HOSTS:  # maintenance is off again: the API answers
        assert request(fleet, host, "/api/items")[0] == 200

    steps = done(summary)
    for host in APP_HOSTS:
        assert steps[("traffic", host)] == "rolled_back", steps
    assert steps[("restore", "local-data1")] == "restored and verified"
    assert steps[("maintenance-on", "local-app1, local-app2")] == "ok"
    assert steps[("maintenance-off", "local-app1, local-app2")] == "ok"
    assert record(fleet, "local-app1")["restored"]["label"] == state["label"]

    (notice,) = sns()
    assert (notice["event"], notice["restore"]["label"]) == ("rollback", state["label"])
    assert not [s for s in fleet.secrets if s in json.dumps(notice)]


def test_a_second_rollback_with_restore_changes_nothing(fleet, sns):
    run = fleet.play(
        "playbooks/rollback.yml", "-e", f"app={APP}", "-e", "restore=true", "-e", f"restore_confirm={state['label']}"
    )
    assert run.rc == 0, run.output[-6000:]
    assert run.changed == {}, run.output[-6000:]
    assert re.search(r"done\s+earlier:\s+not\s+again", run.output), run.output[-4000:]
    assert versions(fleet) == dict.fromkeys(APP_HOSTS, state["previous"])
    assert items(fleet) == state["items"]
    assert sns() == []
