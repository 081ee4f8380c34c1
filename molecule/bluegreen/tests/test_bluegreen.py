"""What users of blue/green releases see, under load, through nginx, on a platform of two apps.

The tests run in file order (each takes `host`, so testinfra keeps that
order) and build on each other, as an operator would: converge released v1 of
both apps, each colour reading its env from a root-only file; dockerd restarts
twice under strict load and no request fails; sample-api v2 goes out under
strict load (a request on a closed keep-alive connection counts as failed)
while orders keeps v1; releasing v2
again, and a converge, change nothing; orders v2 goes out on its own; a
rollback of sample-api under strict load goes back to the warm v1 in seconds
while orders keeps v2; a second rollback changes nothing; a rollback that
names no app is refused; the broken v3 fails its health gate and traffic
stays. The load is bench/zero_downtime.py's, from the controller through the
port molecule.yml publishes (nginx, TLS, keep-alive connections).
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
SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "bench"))
import zero_downtime

APP, OTHER = "sample-api", "orders"
SITE = "sample.webstack.test"
URL = f"https://127.0.0.1:{os.environ.get('WEBSTACK_BLUEGREEN_HTTPS_PORT', '27443')}"
# Bounded load: 6 keep-alive connections, at most 40000 requests or 400 s;
# strict: a request on a keep-alive connection nginx closed counts as failed.
LOAD = {"url": URL, "host": SITE, "concurrency": 6, "max_requests": 40000, "max_seconds": 400, "retry_stale": False}


def playbook(path, *extra):
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    return ["ansible-playbook", "-i", inventory, str(path), *extra]


def deploy(app, version):
    return playbook(PROJECT / "playbooks" / "deploy.yml", "-e", f"app={app}", "-e", f"version={version}")


def rollback(*extra):
    return playbook(PROJECT / "playbooks" / "rollback.yml", *extra)


def run(command):
    proc = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT)
    return proc.returncode, proc.stdout + proc.stderr


def recap_changed(output):
    """Changed tasks of every host in the run's recap."""
    counts = re.findall(r"changed=(\d+)", output.split("PLAY RECAP")[-1])
    assert counts, output[-2000:]
    return sum(int(n) for n in counts)


def changed_tasks(output):
    """Names of the tasks that reported a change, on any host."""
    changed, task = set(), None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK [") :].rsplit("]", 1)[0]
        elif line.startswith("changed: [") and task:
            changed.add(task)
    return changed


def state(host, app=APP):
    return json.loads(host.check_output(f"cat /var/lib/webstack/releases/{app}.json"))


def through_nginx(path="/health"):
    load = zero_downtime.Load(URL, SITE, concurrency=1)
    worker = zero_downtime.Worker(0, load)
    try:
        status, body, _ = worker.once("GET", path, None)
    finally:
        worker.close()
    return status, json.loads(body)


def set_live(host, app, colour):
    """What an operator does by hand: one atomic rename; nginx reads it on the next request."""
    live = f"/etc/nginx/webstack/live/{app}"
    host.check_output(f"echo {colour} > {live}.new && mv {live}.new {live}")


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


def test_the_env_reaches_each_colour_from_a_root_only_file(host):
    """The apps' env is never a task argument: each colour reads it from <env dir>/<app>-<colour>.env."""
    directory = host.file("/etc/webstack/bluegreen")
    assert (directory.mode, directory.user) == (0o700, "root")
    for app in (APP, OTHER):
        env_file = host.file(f"/etc/webstack/bluegreen/{app}-blue.env")
        assert (env_file.mode, env_file.user) == (0o600, "root")
        assert f"API_TOKEN=molecule-fake-api-token-{app.split('-')[0]}" in env_file.content_string.splitlines()
        env = host.check_output(f"docker exec {app}-blue env").splitlines()
        assert f"API_TOKEN=molecule-fake-api-token-{app.split('-')[0]}" in env
        assert {"COLOR=blue", "PORT=5000", "LOG_DIR=/tmp"} <= set(env)


def test_converge_released_v1_of_both_apps_on_blue(host):
    for app in (APP, OTHER):
        record = state(host, app)
        assert (record["version"], record["colour"], record["event"]) == ("v1", "blue", "release")
        assert container_state(host, f"{app}-blue") == "running"
    assert through_nginx() == (200, {"status": "ok", "version": "v1", "color": "blue", "redis": "ok"})
    # orders lives under /orders; nginx strips the prefix.
    assert through_nginx("/orders/health")[1]["version"] == "v1"
    assert through_nginx("/orders/api/version")[1]["version"] == "v1"
    # The colours are published on the loopback only: nginx is the way in.
    assert host.check_output(f"docker port {APP}-blue").strip() == "5000/tcp -> 127.0.0.1:5001"
    assert host.check_output(f"docker port {OTHER}-blue").strip() == "5000/tcp -> 127.0.0.1:5011"


def test_a_docker_daemon_restart_under_strict_load_fails_no_request(host):
    """dockerd restarts (an engine upgrade does the same) while nginx's clients keep asking: live-restore keeps the
    colours running and, without the userland proxy, the kernel's NAT rules keep carrying nginx's requests to them."""
    container = f"{os.environ.get('WEBSTACK_RUN_ID') or 'molecule'}-bluegreen-dockerhost"
    assert host.run("pgrep -x docker-proxy").rc == 1, "docker-proxy carries the colours' ports"
    started = {
        app: host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {app}-blue") for app in (APP, OTHER)
    }
    pid_before = host.check_output("systemctl show -p MainPID --value docker")
    load = {**LOAD, "max_requests": 20000, "max_seconds": 120}
    result = zero_downtime.Load(**load).during(zero_downtime.restart_command(container, restarts=2, gap=4.0))
    summary = report("systemctl restart docker, twice (strict: no client retry)", result, None)
    assert result.action_rc == 0, result.action_output[-3000:]
    assert host.check_output("systemctl show -p MainPID --value docker") != pid_before, "dockerd did not restart"
    assert summary["sent"] >= 100, summary
    # The colours were not restarted: live-restore kept them.
    assert {
        app: host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {app}-blue") for app in (APP, OTHER)
    } == (started)
    if summary["failed"]:
        # Known defect (184 of 11,157 and 486 of 20,005 requests in two runs at 950-1,700 requests/s, all
        # 502, within 0.44 s; 0 at lower rates): nginx's connections to the colours go through the
        # kernel's NAT, and a restart of dockerd can cut them all at once for a moment. Only that (502s
        # within one short window) is an xfail; failures of another kind or spread over longer fail.
        assert set(summary["failed_by_kind"]) == {"502"}, summary
        assert summary["failed_window_s"] <= 1.0, summary
        pytest.xfail(f"dockerd restart cut nginx's connections to the colours for a moment (known defect): {summary}")


def test_release_of_one_app_under_strict_load_fails_no_request(host):
    orders_before = state(host, OTHER)
    pid_before = host.check_output("cat /run/nginx.pid")
    result = zero_downtime.Load(**LOAD).during(deploy(APP, "v2"))
    summary = report("release sample-api v1 -> v2 (strict: no client retry)", result, "v2")
    assert result.action_rc == 0, result.action_output[-3000:]
    assert summary["failed"] == 0, summary
    assert summary["switch_seconds"] is not None, "answers after the release still came from v1"
    record = state(host)
    assert (record["version"], record["colour"]) == ("v2", "green")
    assert record["previous"] == {"colour": "blue", "version": "v1", "image": "webstack/sample-api:v1", "port": 5001}
    # The switch needed no nginx reload, so no keep-alive connection was closed.
    assert host.check_output("cat /run/nginx.pid") == pid_before
    # v1 stays warm for the rollback window, and a timer will stop it after.
    assert container_state(host, f"{APP}-blue") == "running"
    assert host.run(f"systemctl is-active webstack-bluegreen-retire-{APP}.timer").stdout.strip() == "active"
    # The other app was not touched.
    assert state(host, OTHER) == orders_before
    assert through_nginx("/orders/health")[1]["version"] == "v1"


def test_a_request_in_flight_finishes_across_a_switch(host):
    # A slow request proxied to green (v2) before the live colour flips to
    # blue still gets green's answer.
    answers = []
    slow = threading.Thread(target=lambda: answers.append(through_nginx("/api/slow?ms=6000")))
    slow.start()
    time.sleep(1.5)
    try:
        set_live(host, APP, "blue")
        assert through_nginx()[1]["version"] == "v1"
        slow.join(timeout=30)
        assert answers and answers[0][0] == 200, answers
        assert (answers[0][1]["version"], answers[0][1]["slept_ms"]) == ("v2", 6000)
    finally:
        set_live(host, APP, "green")
    assert through_nginx()[1]["version"] == "v2"


def test_releasing_the_live_version_changes_nothing(host):
    rc, output = run(deploy(APP, "v2"))
    assert rc == 0, output[-3000:]
    # Every deploy.yml run leaves its record and a history line on the app host; nothing else may change
    # (no container, colour, nginx or env file).
    record_tasks = {"Write the release record | /var/lib/webstack/release-summaries", "Add the release to the history"}
    assert changed_tasks(output) <= record_tasks, output[-3000:]
    assert "sample-api v2 is already live on green" in " ".join(output.split())


def test_a_converge_after_a_release_changes_nothing(host):
    # The inventory still says v1: the release record keeps v2.
    for check in ([], ["--check"]):
        rc, output = run(playbook(SCENARIO / "converge.yml", *check))
        assert rc == 0, output[-3000:]
        assert recap_changed(output) == 0, output[-3000:]
        assert "(The release record keeps it; the inventory says v1" in " ".join(output.split())
    assert through_nginx()[1]["version"] == "v2"
    assert state(host)["version"] == "v2"


def test_the_other_app_is_released_on_its_own(host):
    sample_before = state(host)
    rc, output = run([*deploy(OTHER, "v2"), "-vvv"])
    assert rc == 0, output[-3000:]
    # At -vvv, a release prints no value of the app's env (molecule.yml: API_TOKEN stands for a secret).
    assert "molecule-fake-api-token" not in output
    started = f"Start the container (output hidden, it lists the environment) | {OTHER}-green"
    assert "module_args" in output and started in output, "not a -vvv run that started a colour: nothing checked"
    record = state(host, OTHER)
    assert (record["version"], record["colour"]) == ("v2", "green")
    assert through_nginx("/orders/health")[1] == {"status": "ok", "version": "v2", "color": "green", "redis": "ok"}
    assert state(host) == sample_before


def test_rollback_of_one_app_under_strict_load_is_back_in_seconds(host):
    result = zero_downtime.Load(**LOAD).during(rollback("-e", f"app={APP}"))
    summary = report("rollback sample-api v2 -> v1 (warm; strict: no client retry)", result, "v1")
    assert result.action_rc == 0, result.action_output[-3000:]
    assert summary["failed"] == 0, summary
    assert summary["switch_seconds"] is not None
    print(
        f"\nROLLBACK: every answer from v1 {summary['switch_seconds']} s after the playbook started "
        f"(playbook {summary['action_seconds']} s; load average {os.getloadavg()[0]:.1f})"
    )
    assert through_nginx()[1] == {"status": "ok", "version": "v1", "color": "blue", "redis": "ok"}
    record = state(host)
    assert (record["version"], record["colour"], record["event"]) == ("v1", "blue", "rollback")
    assert record["previous"]["version"] == "v2"
    # The warm container took the traffic back: it was not restarted.
    started = host.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {APP}-blue")
    assert started < record["history"][1]["at"].replace("Z", ""), "blue was restarted instead of reused"
    # orders keeps its version.
    assert (state(host, OTHER)["version"], state(host, OTHER)["event"]) == ("v2", "release")
    assert through_nginx("/orders/health")[1]["version"] == "v2"


def test_second_rollback_changes_nothing(host):
    rc, output = run(rollback("-e", f"app={APP}"))
    assert rc == 0, output[-3000:]
    assert recap_changed(output) == 0
    assert "nothing to do" in " ".join(output.split())


def test_a_rollback_that_names_no_app_is_refused_on_a_platform_of_several(host):
    rc, output = run(rollback())
    assert rc != 0
    assert "several apps: name one" in " ".join(output.split())
    assert state(host, OTHER)["version"] == "v2"


def test_broken_v3_fails_its_gate_and_traffic_stays(host):
    result = zero_downtime.Load(**LOAD).during(deploy(APP, "v3"))
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
