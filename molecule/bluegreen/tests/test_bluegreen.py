"""What users of a blue/green release see, under load, through nginx.

The tests run in file order (each takes `host`, so testinfra keeps that
order) and build on each other, as an operator would:
converge released v1; v2 goes out under load; releasing v2 again changes
nothing; a rollback under load goes back to the warm v1; a second rollback
changes nothing; the broken v3 fails its health gate and traffic stays.
The load is bench/zero_downtime.py's, from the controller through the port
molecule.yml publishes (nginx, TLS, keep-alive connections).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(PROJECT / "bench"))
import zero_downtime

APP = "sample-api"
SITE = "sample.webstack.test"
URL = f"https://127.0.0.1:{os.environ.get('WEBSTACK_BLUEGREEN_HTTPS_PORT', '28443')}"
STATE = f"/var/lib/webstack/releases/{APP}.json"
# Bounded load: 6 keep-alive connections, at most 40000 requests or 400 s.
LOAD = {"url": URL, "host": SITE, "concurrency": 6, "max_requests": 40000, "max_seconds": 400}


def playbook(name, *extra):
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    return ["ansible-playbook", "-i", inventory, str(PROJECT / "playbooks" / name), *extra]


def run_playbook(name, *extra):
    proc = subprocess.run(playbook(name, *extra), capture_output=True, text=True, cwd=PROJECT)
    return proc.returncode, proc.stdout + proc.stderr


def recap_changed(output):
    match = re.search(r"changed=(\d+)", output.split("PLAY RECAP")[-1])
    assert match, output[-2000:]
    return int(match.group(1))


def state(host):
    return json.loads(host.check_output(f"cat {STATE}"))


def through_nginx(path="/health"):
    load = zero_downtime.Load(URL, SITE, concurrency=1)
    worker = zero_downtime.Worker(0, load)
    try:
        status, body, _ = worker.once("GET", path, None)
    finally:
        worker.close()
    return status, json.loads(body)


def wait_through_nginx(host, version):
    """Poll nginx from the host until answers come from `version` (a reload takes a moment)."""
    host.check_output(
        f"webstack-bluegreen wait --url https://127.0.0.1/health --host {SITE} --insecure "
        f"--expect version={version} --interval 0.2 --timeout 10"
    )


def container_state(host, name):
    result = host.run(f"docker inspect -f '{{{{.State.Status}}}}' {name}")
    return result.stdout.strip() if result.rc == 0 else "absent"


def report(title, result, version):
    summary = result.summary(version)
    zero_downtime.print_report(title, summary)
    return summary


@pytest.fixture(scope="module", autouse=True)
def _needs_inventory():
    if "MOLECULE_INVENTORY_FILE" not in os.environ:
        pytest.skip("run through molecule (molecule verify -s bluegreen)")


def test_converge_released_v1_on_blue(host):
    record = state(host)
    assert (record["version"], record["color"], record["event"]) == ("v1", "blue", "release")
    assert through_nginx() == (200, {"status": "ok", "version": "v1", "color": "blue", "redis": "ok"})
    assert container_state(host, f"{APP}-blue") == "running"
    # The colour is published on the loopback only: nginx is the way in.
    assert host.check_output(f"docker port {APP}-blue").strip() == "5000/tcp -> 127.0.0.1:5001"


def test_release_v2_under_load_fails_no_request(host):
    result = zero_downtime.Load(**LOAD).during(playbook("release.yml", "-e", "bluegreen_version=v2"))
    summary = report("release v1 -> v2", result, "v2")
    assert result.action_rc == 0, result.action_output[-3000:]
    assert summary["failed"] == 0, summary
    assert summary["switch_seconds"] is not None, "answers after the release still came from v1"
    assert through_nginx()[1]["version"] == "v2"
    record = state(host)
    assert (record["version"], record["color"]) == ("v2", "green")
    assert record["previous"] == {"color": "blue", "version": "v1", "image": "webstack/sample-api:v1", "port": 5001}
    # v1 stays warm for the rollback window, and a timer will stop it after.
    assert container_state(host, f"{APP}-blue") == "running"
    assert host.run("systemctl is-active webstack-bluegreen-retire-sample-api.timer").stdout.strip() == "active"


def test_a_request_in_flight_finishes_across_a_switch(host):
    # nginx's reload is graceful: a slow request proxied to green (v2) before
    # the upstream flips to blue still gets green's answer.
    answers = []
    slow = threading.Thread(target=lambda: answers.append(through_nginx("/api/slow?ms=6000")))
    slow.start()
    time.sleep(1.5)
    try:
        flipped = json.loads(host.check_output(f"webstack-bluegreen switch --app {APP} --port 5001"))
        assert flipped["changed"] and flipped["previous_port"] == 5002
        wait_through_nginx(host, "v1")
        slow.join(timeout=30)
        assert answers and answers[0][0] == 200, answers
        assert (answers[0][1]["version"], answers[0][1]["slept_ms"]) == ("v2", 6000)
    finally:
        host.check_output(f"webstack-bluegreen switch --app {APP} --port 5002")
    wait_through_nginx(host, "v2")


def test_releasing_the_live_version_changes_nothing(host):
    rc, output = run_playbook("release.yml", "-e", "bluegreen_version=v2")
    assert rc == 0, output[-3000:]
    assert recap_changed(output) == 0, output[-3000:]
    assert "v2 is already live on green" in " ".join(output.split())


def test_rollback_under_load_goes_back_to_warm_v1(host):
    result = zero_downtime.Load(**LOAD).during(playbook("rollback.yml"))
    summary = report("rollback v2 -> v1 (warm)", result, "v1")
    assert result.action_rc == 0, result.action_output[-3000:]
    assert summary["failed"] == 0, summary
    assert summary["switch_seconds"] is not None
    assert through_nginx()[1] == {"status": "ok", "version": "v1", "color": "blue", "redis": "ok"}
    record = state(host)
    assert (record["version"], record["color"], record["event"]) == ("v1", "blue", "rollback")
    assert record["previous"]["version"] == "v2"
    # The warm container took the traffic back: it was not restarted.
    started = host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {APP}-blue")
    assert started < record["history"][1]["at"].replace("Z", ""), "blue was restarted instead of reused"


def test_second_rollback_changes_nothing(host):
    rc, output = run_playbook("rollback.yml")
    assert rc == 0, output[-3000:]
    assert recap_changed(output) == 0
    assert "nothing to do" in " ".join(output.split())


def test_broken_v3_fails_its_gate_and_traffic_stays(host):
    result = zero_downtime.Load(**LOAD).during(playbook("release.yml", "-e", "bluegreen_version=v3"))
    summary = report("release of the broken v3", result, None)
    output = " ".join(result.action_output.split())
    assert result.action_rc != 0, "the release of the broken v3 succeeded"
    assert "sample-api v3 was NOT released" in output
    assert "HTTP 503" in output and "deliberately broken" in output
    assert "Traffic stays on blue (v1)" in output
    # Nobody using the site noticed.
    assert summary["failed"] == 0, summary
    assert set(summary["versions"]) == {"v1"}, summary
    assert state(host)["version"] == "v1"
    # The bad colour is gone, its log kept.
    assert container_state(host, f"{APP}-green") == "absent"
    assert '"status":503' in host.file("/var/lib/webstack/releases/sample-api-v3-failed.log").content_string
